"""The pull-mode client commands of the ``dualmq`` CLI: produce, consume, topics, groups.

They talk to the broker over the Kafka protocol through the SDK (``dualmq.pull``), exactly as
any other client would, so ``dualmq groups describe`` against a real Kafka cluster prints the
same table. ``lag`` has one definition everywhere: log-end offset minus committed offset, per
partition, never negative (computed by ``dualmq.pull.Admin``).
"""

from __future__ import annotations

import argparse
import sys

import trio

from dualmq.cli.common import host_port
from dualmq.pull import Admin, Consumer, Producer

DEFAULT_KAFKA = "127.0.0.1:9092"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Register produce / consume / topics / groups on the CLI's subcommand parser."""
    kafka_help = f"Kafka address of the broker (default {DEFAULT_KAFKA})"

    def kafka_flag(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--kafka", type=host_port, default=DEFAULT_KAFKA, metavar="HOST:PORT", help=kafka_help)

    produce = commands.add_parser("produce", help="pull mode: append lines from standard input to a topic")
    produce.add_argument("topic")
    produce.add_argument("--key", help="key for every record (records with one key share a partition)")
    produce.add_argument("--partitions", type=int, metavar="N",
                         help="create the topic with N partitions first if it does not exist")
    produce.add_argument("--acks", choices=("0", "1", "all"), default="all")
    kafka_flag(produce)
    produce.set_defaults(handler=_produce)

    consume = commands.add_parser("consume", help="pull mode: print records of a topic")
    consume.add_argument("topic")
    consume.add_argument("--group", help="consume as a member of this consumer group (commits offsets)")
    consume.add_argument("--from-beginning", action="store_true",
                         help="start at the oldest retained record (default: only new records)")
    consume.add_argument("--max", type=int, metavar="N", help="exit after N records")
    consume.add_argument("--idle-exit", type=float, metavar="SECONDS",
                         help="exit when no record arrived for this long")
    kafka_flag(consume)
    consume.set_defaults(handler=_consume)

    topics = commands.add_parser("topics", help="pull mode: create, list, describe, alter, delete topics")
    topic_commands = topics.add_subparsers(dest="topic_command", metavar="ACTION", required=True)
    create = topic_commands.add_parser("create", help="create a topic")
    create.add_argument("name")
    create.add_argument("--partitions", type=int, default=1)
    create.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="topic config, e.g. retention.ms=60000 (repeatable)")
    kafka_flag(create)
    listing = topic_commands.add_parser("list", help="list topics")
    kafka_flag(listing)
    describe = topic_commands.add_parser("describe", help="partitions and their offsets")
    describe.add_argument("names", nargs="*", metavar="NAME")
    kafka_flag(describe)
    alter = topic_commands.add_parser("alter", help="grow a topic to more partitions (never fewer)")
    alter.add_argument("name")
    alter.add_argument("--partitions", type=int, required=True, metavar="N",
                       help="the new partition count; keys may map to other partitions afterwards")
    kafka_flag(alter)
    delete = topic_commands.add_parser("delete", help="delete a topic and its data")
    delete.add_argument("name")
    kafka_flag(delete)
    topics.set_defaults(handler=_topics)

    groups = commands.add_parser("groups", help="pull mode: consumer groups, their members and lag; delete")
    group_commands = groups.add_subparsers(dest="group_command", metavar="ACTION", required=True)
    group_list = group_commands.add_parser("list", help="list consumer groups")
    kafka_flag(group_list)
    group_describe = group_commands.add_parser("describe", help="members, assignments, offsets and lag")
    group_describe.add_argument("group")
    kafka_flag(group_describe)
    group_delete = group_commands.add_parser("delete", help="delete a group without members, and its offsets")
    group_delete.add_argument("group")
    kafka_flag(group_delete)
    groups.set_defaults(handler=_groups)


def _produce(args: argparse.Namespace) -> int:
    key = args.key.encode() if args.key is not None else None
    lines = [line.rstrip("\n").encode() for line in sys.stdin]

    async def run() -> int:
        if args.partitions:
            async with Admin(args.kafka) as admin:
                await admin.create_topics(args.topic, partitions=args.partitions, exist_ok=True)
        acks = args.acks if args.acks == "all" else int(args.acks)
        async with Producer(args.kafka, acks=acks) as producer:
            deliveries = [await producer.enqueue(args.topic, line, key=key) for line in lines]
            await producer.flush()
            for delivery in deliveries:
                await delivery.wait()
        return len(deliveries)

    count = trio.run(run)
    print(f"produced {count} record{'s' if count != 1 else ''} to {args.topic}", file=sys.stderr)
    return 0


def _consume(args: argparse.Namespace) -> int:
    reset = "earliest" if args.from_beginning else "latest"

    async def run() -> None:
        if args.group:
            consumer = Consumer(args.kafka, group_id=args.group, topics=[args.topic], auto_offset_reset=reset)
        else:
            consumer = Consumer(args.kafka, auto_offset_reset=reset)
        async with consumer:
            if not args.group:
                async with Admin(args.kafka) as admin:
                    [topic] = await admin.describe_topics(args.topic)
                consumer.assign([(args.topic, p.partition) for p in topic.partitions])
            seen = 0
            while args.max is None or seen < args.max:
                with trio.move_on_after(args.idle_exit if args.idle_exit else float("inf")) as idle:
                    record = await consumer.__anext__()
                if idle.cancelled_caught:
                    return
                key = "" if record.key is None else record.key.decode(errors="replace")
                value = "" if record.value is None else record.value.decode(errors="replace")
                print(f"{record.partition}\t{record.offset}\t{key}\t{value}", flush=True)
                seen += 1
            if args.group:
                await consumer.commit()

    trio.run(run)
    return 0


def _topics(args: argparse.Namespace) -> int:
    async def run() -> None:
        async with Admin(args.kafka) as admin:
            if args.topic_command == "create":
                config = dict(_key_value(item) for item in args.config)
                await admin.create_topics(args.name, partitions=args.partitions, config=config)
                print(f"created topic {args.name} with {args.partitions} partition(s)")
            elif args.topic_command == "list":
                for name in sorted(await admin.list_topics()):
                    print(name)
            elif args.topic_command == "describe":
                described = await admin.describe_topics(args.names or None)
                print(f"{'TOPIC':<24} {'PARTITION':>9} {'LOG-START':>10} {'LOG-END':>10} {'RECORDS':>10}")
                for topic in sorted(described, key=lambda t: t.name):
                    for p in topic.partitions:
                        print(f"{topic.name:<24} {p.partition:>9} {p.log_start_offset:>10} "
                              f"{p.log_end_offset:>10} {p.log_end_offset - p.log_start_offset:>10}")
            elif args.topic_command == "alter":
                await admin.create_partitions(args.name, args.partitions)
                print(f"topic {args.name} now has {args.partitions} partitions")
            elif args.topic_command == "delete":
                await admin.delete_topics(args.name)
                print(f"deleted topic {args.name}")

    trio.run(run)
    return 0


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SystemExit(f"dualmq: error: --config expects KEY=VALUE, got {item!r}")
    return key, value


def _groups(args: argparse.Namespace) -> int:
    async def run() -> None:
        async with Admin(args.kafka) as admin:
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
