"""12 - Fan-out and parallelism: what more readers cost each mode, measured in separate processes.

What it shows:
    Two of the article's claims, checked with this run's numbers by ``dualmq compare``'s measured
    scenarios (its Python API: ``dualmq.compare.sweep_runner``), every producer and consumer in
    its own process, the broker in another:

    * fan-out - "Redis throughput decreases with more connected nodes": one producer at full
      speed, with 1 and then 10 readers that each want every message (push: subscribers; pull:
      independent consumer groups). A push broker writes each PUBLISH to every subscriber
      before it answers, so the publisher slows down as subscribers are added; a pull broker
      appends once and each group reads the log at its own pace.
    * parallelism - "Kafka supports parallelism, Redis does not": readers that spend 200 us on
      each message (a database call, say), 1 and then 4 of them, over a topic of 8 partitions.
      A consumer group splits the partitions between its members, so 4 members process about
      4 times as many distinct messages; 4 push subscribers each process every message, which
      is 4 times the work for the same messages.

    Shortened to run in well under a minute (1 s of sending per measurement, 1 run each); the
    full curves (1, 2, 5, 10, 50 readers; 1, 2, 4, 8 members; medians of 3 runs, charts) are
    ``dualmq compare fan-out parallelism --html sweeps.html``.

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/12_fan_out_and_parallelism.py

What you should see:
    Two small tables with this run's figures, the verdict sentence compare builds from them
    (it says so when a figure contradicts the article: on a 2-core machine the pull producer
    often slows under fan-out too, because ten reader processes compete with it for the CPU -
    a limit of the machine, not a wait on readers), then "What to remember". Your numbers will
    differ; the shape will not: push's publisher falls with subscribers, pull's group grows
    with members.
"""

import textwrap

import attrs
import trio

from dualmq.compare.sweep_runner import run_sweep
from dualmq.compare.sweeps import SWEEPS
from dualmq.logging import configure_logging

SHORT = dict(min_seconds=1.0, messages=30_000)   # per measurement; the CLI's default is 3 s and 200,000


def trimmed(name: str, labels: tuple[str, ...]):
    sweep = SWEEPS[name]
    return attrs.evolve(sweep, points=tuple(p for p in sweep.points if p.label in labels))


def table(result, *columns: tuple[str, str]) -> None:
    """This run's figures, one row per number of readers and mode, then compare's verdict."""
    print(f"  {'readers':<10}{'mode':<6}" + "".join(f"{title:>25}" for title, _ in columns))
    for point in result.points:
        for mode in ("pull", "push"):
            print(f"  {point.point.label:<10}{mode:<6}"
                  + "".join(f"{point.median(mode, metric):>25,.0f}" for _, metric in columns))
    print(textwrap.fill(f"verdict: {result.verdict}", 96, initial_indent="  ", subsequent_indent="  ") + "\n")


async def main() -> None:
    configure_logging("console", "error")
    fan_out = await run_sweep(trimmed("fan-out", ("1", "10")), runs=1, overrides=SHORT)
    parallel = await run_sweep(trimmed("parallelism", ("1", "4")), runs=1, overrides=dict(min_seconds=1.0))
    one, ten = fan_out.points
    print("fan-out: one producer at full speed, every reader wants every message")
    table(fan_out, ("producer sent/s", "send_per_s"), ("delivered/s per reader", "per_consumer_per_s"))
    single, four = parallel.points
    print("parallelism: readers spending 200 us per message, 8 partitions, 40,000 msg/s offered")
    table(parallel, ("distinct msg/s", "distinct_per_s"), ("msg/s per reader", "per_consumer_per_s"))
    print(f"RESULT push_send_1={one.median('push', 'send_per_s'):.0f} push_send_10={ten.median('push', 'send_per_s'):.0f} "
          f"pull_send_1={one.median('pull', 'send_per_s'):.0f} pull_send_10={ten.median('pull', 'send_per_s'):.0f}")
    print(f"RESULT pull_distinct_1={single.median('pull', 'distinct_per_s'):.0f} "
          f"pull_distinct_4={four.median('pull', 'distinct_per_s'):.0f} "
          f"push_distinct_1={single.median('push', 'distinct_per_s'):.0f} "
          f"push_distinct_4={four.median('push', 'distinct_per_s'):.0f} "
          f"push_delivered_4={four.median('push', 'delivered_per_s'):.0f}")
    print(f"""
Why the numbers look like this:
  * Push fan-out: PUBLISH returns once the broker has queued the message for every subscriber.
    With ten subscribers the broker does ten writes per message, so each PUBLISH costs about
    ten times as much and the publisher's rate falls (here {one.median('push', 'send_per_s'):,.0f}/s ->
    {ten.median('push', 'send_per_s'):,.0f}/s). Every subscriber still gets every message.
  * Pull fan-out: the producer's batch is appended once; each group fetches byte ranges of the
    log when it is ready. Nothing in the protocol makes the producer wait for readers. What
    can still slow it is the machine: each group is a process doing its own decoding.
  * Parallelism: a group's members share the partitions (here 8, so up to 8 members have work),
    each record goes to exactly one member, and the members work at the same time: processed
    messages per second grow with members until partitions or CPU run out. Push has no such
    split: each subscriber gets all messages, so more subscribers repeat the work
    ({four.median('push', 'delivered_per_s'):,.0f} deliveries/s for
    {four.median('push', 'distinct_per_s'):,.0f} distinct messages/s here). To share work in push
    mode, the publisher must split it over channels itself.

What to remember:
  * Push mode's cost of a message grows with its subscribers, and the publisher pays it.
  * Pull mode decouples readers from the writer: a slow or extra group costs the broker reads,
    not the producer's acknowledgements.
  * A consumer group is how pull mode parallelises work; partitions cap the members that help.
""")


if __name__ == "__main__":
    trio.run(main)
