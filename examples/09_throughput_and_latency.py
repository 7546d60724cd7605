"""09 - Throughput and latency: the same workload at full speed through both modes.

What it shows:
    ``dualmq compare`` (here through its Python API, ``dualmq.compare``) sends one workload -
    one producer, one consumer, small messages, as fast as possible - through pull mode and then
    push mode on the same broker, and counts everything: sent, acknowledged, delivered, lost,
    duplicated, reordered, messages per second, and end-to-end latency percentiles. It runs
    pull mode twice: with the default ``fsync=interval`` and with ``fsync=always``. Finally it
    times a pull producer sending one record per request versus batching them.

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/09_throughput_and_latency.py

What you should see:
    The compare table for each run (both modes deliver every message: nothing goes wrong in
    this workload), a measurement of batching (one request per record vs batched records),
    then a summary with this run's numbers and why they look the way they do. Your numbers
    will differ; the reasons will not.
"""

import textwrap

import trio

import dualmq.embedded
from dualmq.logging import configure_logging
from dualmq.pull import Producer
from dualmq.compare.report import ScenarioReport, render_text
from dualmq.compare.runner import run_workload
from dualmq.compare.workload import scenario

MESSAGES = 5000
SAME_WITHIN = 0.10  # two measurements less than 10% apart are "about the same": run-to-run noise


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= SAME_WITHIN * max(a, b)


def verdict(pull_rate: float, push_rate: float, pull_p50_ms: float, push_p50_ms: float) -> str:
    """What this run measured, in one sentence built from its numbers (never a fixed claim)."""
    faster, slower = ("push", "pull") if push_rate > pull_rate else ("pull", "push")
    rates = {"pull": pull_rate, "push": push_rate}
    quicker = "push" if push_p50_ms < pull_p50_ms else "pull"
    p50 = {"pull": pull_p50_ms, "push": push_p50_ms}
    other = "pull" if quicker == "push" else "push"
    throughput = (f"the higher throughput ({rates[faster]:,.0f} vs {rates[slower]:,.0f} msg/s, "
                  f"{rates[faster] / rates[slower]:.1f}x)")
    latency = f"the lower median latency ({p50[quicker]:.2f} vs {p50[other]:.2f} ms)"
    same_rate, same_p50 = _same(pull_rate, push_rate), _same(pull_p50_ms, push_p50_ms)
    if same_rate and same_p50:
        return (f"Here both modes did about the same: {pull_rate:,.0f} vs {push_rate:,.0f} msg/s, median "
                f"latency {pull_p50_ms:.2f} vs {push_p50_ms:.2f} ms (pull vs push).")
    if same_rate:
        return (f"Here both modes had about the same throughput ({pull_rate:,.0f} vs {push_rate:,.0f} msg/s, "
                f"pull vs push); {quicker} mode had {latency}.")
    if same_p50:
        return (f"Here {faster} mode had {throughput}; the median latencies were about the same "
                f"({pull_p50_ms:.2f} vs {push_p50_ms:.2f} ms, pull vs push).")
    if faster == quicker:
        return f"Here {faster} mode had both {throughput} and {latency}."
    return f"Here {faster} mode had {throughput}, and {quicker} mode had {latency}."


def durability_cost(interval_rate: float, always_rate: float, interval_p50_ms: float, always_p50_ms: float) -> str:
    """What fsync=always changed for pull mode in this run, from its numbers."""
    def change(before: float, after: float, unit: str, digits: int) -> str:
        if _same(before, after):
            return f"about the same ({before:,.{digits}f} -> {after:,.{digits}f} {unit})"
        return f"{'up' if after > before else 'down'} from {before:,.{digits}f} to {after:,.{digits}f} {unit}"
    return (f"In this run fsync=always moved pull mode's median latency {change(interval_p50_ms, always_p50_ms, 'ms', 2)} "
            f"and its throughput {change(interval_rate, always_rate, 'msg/s', 0)}.")


async def run(fsync: str, modes: tuple[str, ...]) -> ScenarioReport:
    workload = scenario("baseline", messages=MESSAGES, message_size=100, broker={"log": {"fsync": fsync}})
    report = ScenarioReport.from_run(await run_workload(workload, broker="embedded", modes=modes))
    print(f"--- fsync={fsync}")
    print(render_text([report]))
    return report


async def batching_effect() -> tuple[float, float]:
    """Acknowledged records per second: one request per record vs batched, same broker."""
    async with dualmq.embedded.broker() as broker:
        async with Producer(broker.kafka, linger_ms=0) as producer:  # no waiting for company
            started = trio.current_time()
            for _ in range(500):
                await producer.send("one-by-one", b"x" * 100)  # waits for each acknowledgement
            one_by_one = 500 / (trio.current_time() - started)
        async with Producer(broker.kafka, linger_ms=5) as producer:  # Kafka's default linger
            started = trio.current_time()
            for _ in range(MESSAGES):
                await producer.enqueue("batched", b"x" * 100)  # only queues it
            await producer.flush()  # now all are acknowledged
            batched = MESSAGES / (trio.current_time() - started)
    return one_by_one, batched


async def main() -> None:
    configure_logging("console", "error")  # compare's embedded broker: its expected warnings are in the table
    both = await run("interval", ("pull", "push"))
    durable = await run("always", ("pull",))
    pull, push, pull_always = both.results["pull"], both.results["push"], durable.results["pull"]
    print(f"RESULT pull_delivered={pull.delivered} push_delivered={push.delivered} sent={MESSAGES} "
          f"pull_lost={pull.lost} push_lost={push.lost}")
    print(f"RESULT pull_rate={pull.delivery_rate:.0f} push_rate={push.delivery_rate:.0f} "
          f"pull_always_rate={pull_always.delivery_rate:.0f} pull_p50_ms={pull.latency.p50_ms:.3f} "
          f"push_p50_ms={push.latency.p50_ms:.3f}")
    one_by_one, batched = await batching_effect()
    print(f"RESULT unbatched_rate={one_by_one:.0f} batched_rate={batched:.0f}")
    print(f"""
This run, {MESSAGES} messages of 100 B, one producer, one consumer, same broker:
  pull, fsync=interval  {pull.delivery_rate:>9,.0f} msg/s   median latency {pull.latency.p50_ms:7.2f} ms
  push                  {push.delivery_rate:>9,.0f} msg/s   median latency {push.latency.p50_ms:7.2f} ms
  pull, fsync=always    {pull_always.delivery_rate:>9,.0f} msg/s   median latency {pull_always.latency.p50_ms:7.2f} ms
  pull producer, one request per record (send, wait, send ...): {one_by_one:,.0f} acknowledged/s
  pull producer, records batched (enqueue all, then flush):     {batched:,.0f} acknowledged/s
{textwrap.fill(verdict(pull.delivery_rate, push.delivery_rate, pull.latency.p50_ms, push.latency.p50_ms), 96)}
{textwrap.fill(durability_cost(pull.delivery_rate, pull_always.delivery_rate, pull.latency.p50_ms,
                               pull_always.latency.p50_ms), 96)}

Why the numbers look like this:
  * Batching is most of throughput: {batched / one_by_one:.0f}x above, for the same records. The Kafka
    producer packs records into one RecordBatch per request, the broker appends those bytes
    as they are, the consumer fetches whole ranges. compare also pipelines 100 PUBLISHes per
    write in push mode, or push would pay one round trip per message too.
  * Pull vs push latency: a pushed message goes to the subscriber's socket the moment PUBLISH
    arrives. A pulled record first waits for its batch to be sent (linger) and then for the
    consumer's next fetch; the log write is on the path as well.
  * fsync=always: each batch waits for the disk before it is acknowledged, and the consumer can
    only read what is acknowledged - so latency is what it costs first. On tmpfs or a fast SSD
    the cost may be lost in the noise of one short run (compare the line above); on a cloud
    volume or a spinning disk it is large.
  * Python: dualmq runs broker and clients in one Python process here. Real Kafka and Redis
    are much faster; point the same compare at them (dualmq compare --kafka ... --resp ...).

What to remember:
  * Throughput comes from batching; latency comes from how soon a message moves (push: at once).
  * Durability (fsync=always, acks=all) costs latency first, throughput second.
  * Always read a number next to the guarantees it was measured under (the receipts above).""")


if __name__ == "__main__":
    trio.run(main)
