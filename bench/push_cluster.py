"""Benchmark: what forwarding costs PUBLISH in a three-broker cluster, against one broker.

What it measures (issue 18, docs/cluster.md#push-mode-in-a-cluster): ``redis-benchmark``
publishing N messages of 100 bytes (``-P 16 -c 50``, its pipelined PUBLISH) to one broker,
three ways:

* single - one ``dualmq serve`` without ``--cluster``, one ``redis-cli SUBSCRIBE`` on it: the
  reference;
* cluster, no subscriber - broker 1 of a three-broker cluster, nobody subscribed anywhere:
  every PUBLISH is still forwarded to both other brokers (the cost of forwarding alone);
* cluster, 3 subscribers - one ``redis-cli SUBSCRIBE`` on each broker: broker 1 delivers and
  forwards, brokers 2 and 3 deliver what it forwarded.

Each case runs R times; medians of redis-benchmark's requests/s, and each case's ratio to the
reference measured in the same run. After each cluster run it reads INFO: how many messages
broker 1 dropped on its links (``forward_dropped``: at most once, a link whose queue is full
drops) and how many frames each broker delivered, to show what the rate bought.

Run:  .venv/bin/python bench/push_cluster.py [--messages N] [--runs R]
Needs redis-benchmark, redis-cli and etcd on PATH, and the cluster extra (httpx).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dualmq.etcd_process import EtcdProcess  # noqa: E402
from dualmq.process import BrokerCluster, BrokerProcess  # noqa: E402

PAYLOAD = "x" * 100
TIMEOUT = 300


def info(address: tuple[str, int], section: str) -> dict[str, str]:
    out = subprocess.run(["redis-cli", "-h", address[0], "-p", str(address[1]), "INFO", section],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line)


@contextlib.contextmanager
def subscribers(addresses: list[tuple[str, int]], channel: str):
    """One ``redis-cli SUBSCRIBE`` per address, output thrown away, stopped on exit."""
    processes = [subprocess.Popen(["redis-cli", "-h", host, "-p", str(port), "SUBSCRIBE", channel],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                 for host, port in addresses]
    try:
        deadline = time.monotonic() + 10
        for address in addresses:
            while info(address, "clients").get("pubsub_clients") != "1":
                if time.monotonic() > deadline:
                    raise SystemExit(f"the subscriber on {address} never subscribed")
                time.sleep(0.05)
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


def publish(address: tuple[str, int], channel: str, messages: int) -> float:
    """redis-benchmark's requests per second for ``messages`` pipelined PUBLISHes."""
    out = subprocess.run(["redis-benchmark", "-h", address[0], "-p", str(address[1]), "-n", str(messages),
                          "-P", "16", "-c", "50", "-q", "PUBLISH", channel, PAYLOAD],
                         capture_output=True, text=True, timeout=TIMEOUT, check=True).stdout
    found = re.findall(r"([\d.]+) requests per second", out)
    if not found:
        raise SystemExit(f"redis-benchmark printed no rate: {out[-500:]}")
    return float(found[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"single": [], "cluster, no subscriber": [], "cluster, 3 subscribers": []}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dualmq-bench-push-cluster-") as scratch:
        workdir = Path(scratch)
        config = workdir / "cluster.toml"
        config.write_text("[cluster]\nlease_ttl_seconds = 10\n")
        with BrokerProcess(workdir / "single", "--log-level", "warning") as single, \
                EtcdProcess(workdir / "etcd", log_path=workdir / "etcd.log") as etcd, \
                BrokerCluster(workdir, etcd.endpoint, 3, "--config", str(config), "--log-level", "warning") as cluster:
            first = cluster.node(1).resp
            deadline = time.monotonic() + 10
            while info(first, "cluster").get("forward_peers_connected") != "2":
                if time.monotonic() > deadline:
                    raise SystemExit("broker 1 never linked to the two others")
                time.sleep(0.1)
            everyone = [broker.resp for broker in cluster.brokers]
            for attempt in range(args.runs):
                with subscribers([single.resp], f"single-{attempt}"):
                    rates["single"].append(publish(single.resp, f"single-{attempt}", args.messages))
                rates["cluster, no subscriber"].append(publish(first, f"nobody-{attempt}", args.messages))
                before = [int(info(a, "dualmq")["frames_delivered"]) for a in everyone]
                dropped_before = int(info(first, "cluster")["forward_dropped"])
                with subscribers(everyone, f"all-{attempt}"):
                    rates["cluster, 3 subscribers"].append(publish(first, f"all-{attempt}", args.messages))
                    time.sleep(1)  # let the forwarded tail arrive before counting
                    delivered = [int(info(a, "dualmq")["frames_delivered"]) - b for a, b in zip(everyone, before)]
                dropped = int(info(first, "cluster")["forward_dropped"]) - dropped_before
                notes.append(f"  run {attempt + 1}: delivered per broker {delivered} of {args.messages}; "
                             f"broker 1 dropped {dropped} forwards")
    reference = statistics.median(rates["single"])
    print(f"redis-benchmark -P 16 -c 50 PUBLISH, {args.messages} x {len(PAYLOAD)} B; medians of {args.runs}")
    for case, values in rates.items():
        rate = statistics.median(values)
        print(f"  {case:<24} {rate:>12,.0f} msg/s  x{rate / reference:.2f} of single")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
