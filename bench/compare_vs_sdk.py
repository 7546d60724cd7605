"""``dualmq compare``'s baseline pull figure against the SDK's own consume rate, same broker, same run.

    .venv/bin/python bench/compare_vs_sdk.py [--runs 5] [--records 400000]

What it measures, per run, against one ``dualmq serve`` started here:

* **SDK consume**: ``bench/sdk_pull.py``'s measurement - one fresh process writes
  ``--records`` 100-byte records with the SDK, another reads them all from offset 0 - in
  records/s (the reference);
* **compare pull**: ``dualmq compare``'s baseline in pull mode (``measured.measure_mode``:
  producer and consumer in their own processes, at least 3 s and 200,000 messages, delivered
  per second over the steady window);
* **accounting cost**: the same compare run with the consumers' accounting off (counts only),
  for both modes: the consumer processes' CPU time per message received, on and off (each
  role's CPU from the moment it was ready: interpreter start-up left out). The difference is
  the accounting's cost; the mode's own cost is the producer's plus the consumer's CPU per
  message with accounting off (the broker's, which would only lower the share, left out).

It prints each run, then the medians and the ratio compare pull / SDK consume per run and its
median (issue 19's target: at least 0.4) and the accounting's share of the consumer's CPU per message (target: under a
tenth). The machine's speed is printed per run (``cpu_speed_ms``): on a shared 2-core VM it
swings within seconds; the ratio compares figures taken back to back.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import cpu_speed_ms  # noqa: E402
from bench.sdk_pull import run_role  # noqa: E402
from dualmq.compare import payload  # noqa: E402
from dualmq.compare.brokers import BrokerHandle  # noqa: E402
from dualmq.compare.measured import measure_mode  # noqa: E402
from dualmq.compare.sweeps import SWEEPS, workload_for  # noqa: E402
from dualmq.process import BrokerProcess  # noqa: E402

TARGET_RATIO = 0.4


def compare_run(address: dict[str, str], mode: str, account: bool):
    sweep = SWEEPS["baseline"]
    workload = workload_for(sweep, sweep.points[0], {})
    handle = BrokerHandle("external", address["kafka"], address["resp"], {})
    return trio.run(lambda: measure_mode(mode, workload, handle, payload.new_run_id(), account=account))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs (medians are printed)")
    parser.add_argument("--records", type=int, default=400_000, help="records the SDK writes, then reads, per run")
    args = parser.parse_args()
    sdk, pull, cpu = [], [], {(m, a): [] for m in ("pull", "push") for a in (True, False)}
    producer_cpu = {"pull": [], "push": []}
    with tempfile.TemporaryDirectory(prefix="dualmq-bench-") as tmp:
        broker = BrokerProcess(Path(tmp) / "data", log_level="warning").start(timeout=30)
        address = {"kafka": broker.kafka_address, "resp": broker.resp_address}
        try:
            for run in range(args.runs):
                speed = cpu_speed_ms()
                topic = f"bench-sdk-{run}"
                run_role("sdk-produce", address["kafka"], topic, args.records)
                sdk.append(run_role("sdk-consume", address["kafka"], topic, args.records))
                measured = compare_run(address, "pull", True)
                pull.append(measured.delivered_per_s)
                cpu[("pull", True)].append(measured.consumer_cpu_us)
                for mode, account in (("pull", False), ("push", True), ("push", False)):
                    other = compare_run(address, mode, account)
                    cpu[(mode, account)].append(other.consumer_cpu_us)
                    if not account:
                        producer_cpu[mode].append(other.producer_cpu_us)
                print(f"run {run + 1} (machine speed {speed:.0f} ms per loop): SDK consume {sdk[-1]:,.0f}/s, "
                      f"compare pull {pull[-1]:,.0f}/s -> {pull[-1] / sdk[-1]:.2f}x; consumer CPU per message "
                      f"(accounting on/off): pull {cpu[('pull', True)][-1]:.2f}/{cpu[('pull', False)][-1]:.2f} us, "
                      f"push {cpu[('push', True)][-1]:.2f}/{cpu[('push', False)][-1]:.2f} us", flush=True)
        finally:
            broker.stop(timeout=30)
    sdk_median, pull_median = statistics.median(sdk), statistics.median(pull)
    # The ratio is taken per run (both figures measured back to back, at the same machine speed)
    # and its median printed: medians of the two series could pair a fast moment with a slow one.
    ratios = [p / s for p, s in zip(pull, sdk)]
    ratio = statistics.median(ratios)
    print(f"\nmedians of {args.runs} runs: SDK consume {sdk_median:,.0f} records/s, compare baseline pull "
          f"{pull_median:,.0f} delivered/s; ratio per run {', '.join(f'{r:.2f}' for r in ratios)}, median "
          f"{ratio:.2f}x (target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")
    for mode in ("pull", "push"):
        on, off = statistics.median(cpu[(mode, True)]), statistics.median(cpu[(mode, False)])
        own = off + statistics.median(producer_cpu[mode])
        share = (on - off) / own
        print(f"{mode}: consumer CPU per message, accounting on {on:.2f} us, off {off:.2f} us; producer "
              f"{own - off:.2f} us -> accounting costs {share:+.1%} of the mode's own {own:.2f} us per message "
              f"(producer + consumer; target < 10%: {'met' if share < 0.1 else 'NOT met'})")


if __name__ == "__main__":
    main()
