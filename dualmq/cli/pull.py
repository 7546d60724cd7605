"""The pull-mode client commands of the ``dualmq`` CLI: produce, consume, topics, groups.

They talk to the broker over the Kafka protocol through the SDK (``dualmq.pull``), exactly as
any other client would, so ``dualmq groups describe`` against a real Kafka cluster prints the
same table. ``lag`` has one definition everywhere: log-end offset minus committed offset, per
partition, never negative (computed by ``dualmq.pull.Admin``).

Kafka users' habits work: ``-b`` / ``--bootstrap-server`` name the broker (as for kcat and
Kafka's console tools), ``produce -K :`` splits each line into key and value as ``kcat -K :``
does, ``consume --format`` takes kcat's ``-f`` tokens (``record_format``), and piped output is
values only. Ctrl-C stops ``produce`` after sending what was typed and ``consume`` after
committing what was printed; both then exit with status 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator

import trio

from dualmq.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, add_kafka_option, until_interrupted
from dualmq.client_options import kafka_security
from dualmq.cli.record_format import TERMINAL_FORMAT, VALUES_FORMAT, FormatError, RecordFormat
from dualmq.pull import Admin, Consumer, Producer

STDIN_CHUNK = 64 * 1024  # one read of standard input: a typed line on a terminal, up to 64 KiB from a pipe


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Register produce / consume / topics / groups on the CLI's subcommand parser."""
    produce = commands.add_parser(
        "produce", help="pull mode: append lines from standard input to a topic",
        description="Each line of standard input becomes one record. On a terminal a '>' prompt asks for "
                    "the next line; Ctrl-C sends what was entered, then exits with status 130.")
    produce.add_argument("topic", help="the topic (created by the broker on first use, with its defaults)")
    produce.add_argument("--key", "-k", help="key for every record (records with one key share a partition)")
    produce.add_argument("--key-delimiter", "-K", metavar="DELIM",
                         help="split each line at the first DELIM into key and value, as kcat -K does "
                              "(a line without DELIM: the --key, if any, and the whole line as value)")
    produce.add_argument("--partitions", type=int, metavar="N",
                         help="create the topic with N partitions first if it does not exist")
    produce.add_argument("--acks", choices=("0", "1", "all"), default="all",
                         help="acknowledgement the producer waits for: all (durable on the leader; "
                              "the default), 1 (leader), 0 (none)")
    add_kafka_option(produce)
    produce.set_defaults(handler=_produce)

    consume = commands.add_parser(
        "consume", help="pull mode: print records of a topic",
        description="Print records as they arrive. Ctrl-C stops (a group member commits what it printed "
                    "first) and exits with status 130.")
    consume.add_argument("topic", help="the topic to read")
    consume.add_argument("--group", help="consume as a member of this consumer group (commits offsets)")
    consume.add_argument("--from-beginning", action="store_true",
                         help="start at the oldest retained record (default: only new records)")
    consume.add_argument("--max", type=int, metavar="N", help="exit after N records")
    consume.add_argument("--idle-exit", type=float, metavar="SECONDS",
                         help="exit when no record arrived for this long once the consumer is ready "
                              "(group joined and positions known: the join's wait does not count)")
    consume.add_argument("--format", "-f", metavar="FORMAT",
                         help=f"kcat-style format per record: %%s value, %%k key, %%p partition, %%o offset, "
                              f"%%T timestamp, %%t topic, %%h headers, %%S/%%K lengths, \\n \\t escapes "
                              f"(default on a terminal {TERMINAL_FORMAT!r}, into a pipe {VALUES_FORMAT!r}: "
                              f"values only)")
    add_kafka_option(consume)
    consume.set_defaults(handler=_consume)

    topics = commands.add_parser("topics", help="pull mode: create, list, describe, alter, delete topics")
    topic_commands = topics.add_subparsers(dest="topic_command", metavar="ACTION", required=True)
    create = topic_commands.add_parser("create", help="create a topic")
    create.add_argument("name", help="the new topic's name")
    create.add_argument("--partitions", type=int, default=1, help="how many partitions (default 1)")
    create.add_argument("--replication-factor", type=int, default=-1, metavar="N",
                        help="copies of each partition, on N brokers of a cluster (default: the broker's, 1)")
    create.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="topic config, e.g. retention.ms=60000 (repeatable)")
    add_kafka_option(create)
    listing = topic_commands.add_parser("list", help="list topics")
    add_kafka_option(listing)
    describe = topic_commands.add_parser("describe", help="partitions, their offsets, and the topic's configs")
    describe.add_argument("names", nargs="*", metavar="NAME", help="topics to describe (default: all)")
    add_kafka_option(describe)
    alter = topic_commands.add_parser("alter", help="grow a topic to more partitions (never fewer)")
    alter.add_argument("name", help="the topic to grow")
    alter.add_argument("--partitions", type=int, required=True, metavar="N",
                       help="the new partition count; keys may map to other partitions afterwards")
    add_kafka_option(alter)
    delete = topic_commands.add_parser("delete", help="delete a topic and its data")
    delete.add_argument("name", help="the topic to delete")
    add_kafka_option(delete)
    topics.set_defaults(handler=_topics)

    groups = commands.add_parser("groups", help="pull mode: consumer groups, their members and lag; delete")
    group_commands = groups.add_subparsers(dest="group_command", metavar="ACTION", required=True)
    group_list = group_commands.add_parser("list", help="list consumer groups")
    add_kafka_option(group_list)
    group_describe = group_commands.add_parser("describe", help="members, assignments, offsets and lag")
    group_describe.add_argument("group", help="the group to describe")
    add_kafka_option(group_describe)
    group_delete = group_commands.add_parser("delete", help="delete a group without members, and its offsets")
    group_delete.add_argument("group", help="the group to delete")
    add_kafka_option(group_delete)
    groups.set_defaults(handler=_groups)


# --- produce ----------------------------------------------------------------------------------------


async def _stdin_lines(prompt: bool) -> AsyncIterator[bytes]:
    """Lines of standard input as they come, without their line ends; the last may lack one.

    Read in a worker thread (``os.read`` blocks), so Ctrl-C can stop us while we wait: the
    thread is abandoned and dies with the process. On a terminal each read returns one typed
    line; from a pipe up to ``STDIN_CHUNK`` bytes, split here.
    """
    fd = sys.stdin.fileno()
    pending = b""
    while True:
        if prompt:
            print(">", end=" ", file=sys.stderr, flush=True)
        chunk = await trio.to_thread.run_sync(os.read, fd, STDIN_CHUNK, abandon_on_cancel=True)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line.removesuffix(b"\r")
    if pending:
        yield pending


def _split_key(line: bytes, delimiter: bytes | None, default_key: bytes | None) -> tuple[bytes | None, bytes]:
    """``(key, value)`` of one input line: split at the first ``delimiter`` (kcat's ``-K``)."""
    if delimiter:
        key, found, value = line.partition(delimiter)
        if found:
            return key, value
    return default_key, line


def _produce(args: argparse.Namespace) -> int:
    default_key = args.key.encode() if args.key is not None else None
    delimiter = args.key_delimiter.encode() if args.key_delimiter else None
    interactive = sys.stdin.isatty()
    acks = args.acks if args.acks == "all" else int(args.acks)

    async def run() -> tuple[int, bool]:
        if args.partitions:
            async with Admin(args.kafka, **kafka_security(args)) as admin:
                await admin.create_topics(args.topic, partitions=args.partitions, exist_ok=True)
        deliveries = []
        async with Producer(args.kafka, acks=acks, **kafka_security(args)) as producer:

            async def read_and_enqueue() -> None:
                async for line in _stdin_lines(prompt=interactive):
                    key, value = _split_key(line, delimiter, default_key)
                    deliveries.append(await producer.enqueue(args.topic, value, key=key))

            # Ctrl-C ends the reading only: what was entered is still sent below.
            interrupted = await until_interrupted(read_and_enqueue)
            if interrupted and interactive:
                print(file=sys.stderr)  # end the prompt's line
            await producer.flush()
            for delivery in deliveries:
                await delivery.wait()
        return len(deliveries), interrupted

    count, interrupted = trio.run(run)
    print(f"produced {count} record{'s' if count != 1 else ''} to {args.topic}", file=sys.stderr)
    return EXIT_INTERRUPTED if interrupted else 0


# --- consume ----------------------------------------------------------------------------------------


def _consume(args: argparse.Namespace) -> int:
    reset = "earliest" if args.from_beginning else "latest"
    try:
        record_format = RecordFormat(args.format or (TERMINAL_FORMAT if sys.stdout.isatty() else VALUES_FORMAT))
    except FormatError as exc:
        print(f"dualmq: error: --format: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = sys.stdout.buffer

    async def run() -> bool:
        if args.group:
            consumer = Consumer(args.kafka, group_id=args.group, topics=[args.topic], auto_offset_reset=reset,
                                **kafka_security(args))
        else:
            consumer = Consumer(args.kafka, auto_offset_reset=reset, **kafka_security(args))
        async with consumer:
            if not args.group:
                async with Admin(args.kafka, **kafka_security(args)) as admin:
                    [topic] = await admin.describe_topics(args.topic)
                consumer.assign([(args.topic, p.partition) for p in topic.partitions])
            # Leaving the ``async with`` normally (also after Ctrl-C) commits what was printed.
            return await until_interrupted(lambda: _print_records(consumer, args, record_format, out))

    interrupted = trio.run(run)
    return EXIT_INTERRUPTED if interrupted else 0


async def _print_records(consumer: Consumer, args: argparse.Namespace, record_format: RecordFormat, out) -> None:
    """Print records until ``--max`` of them, or ``--idle-exit`` seconds without one once ready."""
    idle = trio.CancelScope()  # no deadline until the consumer is ready: a group join is not idleness
    seen = 0
    async with trio.open_nursery() as nursery:
        if args.idle_exit is not None:

            async def start_idle_timer() -> None:
                await consumer.wait_ready()
                idle.deadline = trio.current_time() + args.idle_exit

            nursery.start_soon(start_idle_timer)
        with idle:
            while args.max is None or seen < args.max:
                record = await consumer.__anext__()
                out.write(record_format.render(record))
                out.flush()
                seen += 1
                if idle.deadline != float("inf"):
                    idle.deadline = trio.current_time() + args.idle_exit
        nursery.cancel_scope.cancel()


# --- topics and groups ------------------------------------------------------------------------------


def _topics(args: argparse.Namespace) -> int:
    async def run() -> None:
        async with Admin(args.kafka, **kafka_security(args)) as admin:
            if args.topic_command == "create":
                config = dict(_key_value(item) for item in args.config)
                await admin.create_topics(args.name, partitions=args.partitions, config=config,
                                          replication_factor=args.replication_factor)
                print(f"created topic {args.name} with {args.partitions} partition(s)")
            elif args.topic_command == "list":
                for name in sorted(await admin.list_topics()):
                    print(name)
            elif args.topic_command == "describe":
                await _describe_topics(admin, args.names or None)
            elif args.topic_command == "alter":
                await admin.create_partitions(args.name, args.partitions)
                print(f"topic {args.name} now has {args.partitions} partitions")
            elif args.topic_command == "delete":
                await admin.delete_topics(args.name)
                print(f"deleted topic {args.name}")

    trio.run(run)
    return 0


async def _describe_topics(admin: Admin, names: list[str] | None) -> None:
    """The partition table, then each topic's settings (DescribeConfigs) and where they come from."""
    described = sorted(await admin.describe_topics(names), key=lambda t: t.name)
    print(f"{'TOPIC':<24} {'PARTITION':>9} {'LOG-START':>10} {'LOG-END':>10} {'RECORDS':>10}")
    for topic in described:
        for p in topic.partitions:
            print(f"{topic.name:<24} {p.partition:>9} {p.log_start_offset:>10} "
                  f"{p.log_end_offset:>10} {p.log_end_offset - p.log_start_offset:>10}")
    if not described:
        return
    configs = await admin.describe_configs([t.name for t in described])
    print(f"\n{'TOPIC':<24} {'CONFIG':<20} {'VALUE':>20}  SOURCE")
    for topic in described:
        for entry in configs.get(topic.name, ()):
            value = "-" if entry.value is None else entry.value
            print(f"{topic.name:<24} {entry.name:<20} {value:>20}  {entry.source}")


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SystemExit(f"dualmq: error: --config expects KEY=VALUE, got {item!r}")
    return key, value


def _groups(args: argparse.Namespace) -> int:
    async def run() -> None:
        async with Admin(args.kafka, **kafka_security(args)) as admin:
            if args.group_command == "list":
                for group in sorted(await admin.list_groups(), key=lambda g: g.group_id):
                    print(f"{group.group_id}\t{group.state or '-'}\t{group.protocol_type or '-'}")
                return
            if args.group_command == "delete":
                await admin.delete_group(args.group)
                print(f"deleted group {args.group} and its committed offsets")
                return
            group = await admin.describe_group(args.group)
            print(f"group {group.group_id}: state {group.state}, protocol {group.protocol or '-'}, "
                  f"{len(group.members)} member(s), total lag {group.total_lag}")
            owner = {}
            for member in group.members:
                for tp in member.assignment:
                    owner[tp] = f"{member.client_id}@{member.client_host}"
            print(f"{'TOPIC':<20} {'PARTITION':>9} {'COMMITTED':>10} {'LOG-END':>10} {'LAG':>8}  MEMBER")
            for row in sorted(group.offsets, key=lambda r: (r.topic, r.partition)):
                committed = "-" if row.committed is None else str(row.committed)
                member = owner.get((row.topic, row.partition), "-")
                print(f"{row.topic:<20} {row.partition:>9} {committed:>10} {row.log_end_offset:>10} "
                      f"{row.lag:>8}  {member}")

    trio.run(run)
    return 0
