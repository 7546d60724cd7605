"""The ``dualmq`` command line (also ``python -m dualmq``).

A composition root: ``serve`` builds the broker from a config file plus flags and runs it
until SIGINT/SIGTERM. Expected failures (bad config value, locked or unwritable data dir,
port in use) print one clear line on standard error and exit non-zero — never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import attrs
import trio

from broker.config import BrokerConfig, parse_host_port
from broker.errors import BrokerError
from dualmq.logging import LOG_FORMATS, LOG_LEVELS, configure_logging
from dualmq import __version__

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _host_port(text: str) -> str:
    try:
        parse_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dualmq",
        description="One broker, two delivery models: Kafka-like pull mode and Redis-like push mode.",
    )
    parser.add_argument("--version", action="version", version=f"dualmq {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the broker (Kafka protocol and RESP listeners)")
    serve.add_argument("--config", type=Path, help="TOML config file (flags override it)")
    serve.add_argument("--data-dir", type=Path, help="where the log lives (default ./dualmq-data)")
    serve.add_argument("--kafka", type=_host_port, metavar="HOST:PORT",
                       help="Kafka listener, pull mode (default 127.0.0.1:9092; port 0 = any free port)")
    serve.add_argument("--resp", type=_host_port, metavar="HOST:PORT",
                       help="RESP listener, push mode (default 127.0.0.1:6379; port 0 = any free port)")
    serve.add_argument("--fsync", choices=("always", "interval", "never"),
                       help="when appended data is fsynced (default interval)")
    serve.add_argument("--ready-file", type=Path,
                       help='write {"kafka": ..., "resp": ..., "pid": ...} here once listening')
    serve.add_argument("--log-format", choices=LOG_FORMATS, default="auto",
                       help="console on a terminal, JSON otherwise (auto)")
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    serve.set_defaults(handler=_serve)

    resp_help = "RESP address of the broker (default 127.0.0.1:6379)"
    publish = commands.add_parser("publish", help="push mode: publish one message to a channel")
    publish.add_argument("channel")
    publish.add_argument("message")
    publish.add_argument("--resp", type=_host_port, default="127.0.0.1:6379", metavar="HOST:PORT", help=resp_help)
    publish.set_defaults(handler=_publish)

    subscribe = commands.add_parser("subscribe", help="push mode: print messages as they are pushed")
    subscribe.add_argument("channels", nargs="*", metavar="CHANNEL")
    subscribe.add_argument("--pattern", action="append", default=[], metavar="PATTERN",
                           help="also subscribe to a glob pattern (repeatable)")
    subscribe.add_argument("--max", type=int, default=None, metavar="N", help="exit after N messages")
    subscribe.add_argument("--reconnect", action="store_true",
                           help="reconnect when the connection drops, reporting the gap")
    subscribe.add_argument("--resp", type=_host_port, default="127.0.0.1:6379", metavar="HOST:PORT", help=resp_help)
    subscribe.set_defaults(handler=_subscribe)

    check = commands.add_parser(
        "check", help="verify every segment of a data directory, read-only (exit 0 intact, 1 damaged)",
        description="Verify every batch of every segment (offsets, lengths, CRC-32C, the chain between "
                    "segments, index files) without changing anything; print what is damaged and what "
                    "the next start's recovery would cut. Exit status: 0 intact, 1 damage found, 2 usage error.")
    check.add_argument("--data-dir", type=Path, required=True, help="the broker's data directory")
    check.add_argument("--config", type=Path, help="TOML config file (for [log] index_interval_bytes)")
    check.set_defaults(handler=_check)

    from dualmq.cli_pull import add_parsers as add_pull_parsers

    add_pull_parsers(commands, _host_port)

    from dualmq.compare import command as compare_command

    compare_command.add_parser(commands)
    return parser


def _publish(args: argparse.Namespace) -> int:
    from dualmq.push import Publisher

    async def run() -> int:
        async with Publisher(args.resp) as publisher:
            return await publisher.publish(args.channel, args.message)

    receivers = trio.run(run)
    print(f"delivered to {receivers} subscriber{'s' if receivers != 1 else ''}"
          + ("" if receivers else " (nobody was subscribed: the message is gone)"))
    return 0


def _subscribe(args: argparse.Namespace) -> int:
    from dualmq.push import Gap, subscribe

    if not args.channels and not args.pattern:
        print("dualmq: error: name at least one CHANNEL or --pattern", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> None:
        seen = 0
        async with subscribe(args.resp, *args.channels, patterns=args.pattern,
                             reconnect=args.reconnect) as subscription:
            print(f"subscribed to {', '.join([*args.channels, *args.pattern])}; waiting for messages",
                  file=sys.stderr, flush=True)
            async for item in subscription:
                if isinstance(item, Gap):
                    print(f"-- disconnected for {item.duration:.1f} s ({item.reason}): messages "
                          "published meanwhile are lost (at-most-once)", file=sys.stderr, flush=True)
                    continue
                channel = item.channel.decode(errors="replace")
                data = item.data.decode(errors="replace")
                print(f"{channel}\t{data}", flush=True)
                seen += 1
                if args.max is not None and seen >= args.max:
                    return

    trio.run(run)
    return 0


def load_config(args: argparse.Namespace) -> BrokerConfig:
    """The config file (or defaults) with command-line flags applied on top."""
    config = BrokerConfig.from_toml(args.config) if args.config else BrokerConfig()
    if args.data_dir is not None:
        config = attrs.evolve(config, data_dir=args.data_dir)
    if args.kafka is not None:
        config = attrs.evolve(config, kafka=attrs.evolve(config.kafka, listen=args.kafka))
    if args.resp is not None:
        config = attrs.evolve(config, resp=attrs.evolve(config.resp, listen=args.resp))
    if args.fsync is not None:
        config = attrs.evolve(config, log=attrs.evolve(config.log, fsync=args.fsync))
    return config


def _serve(args: argparse.Namespace) -> int:
    from dualmq.daemon import serve_until_signalled

    configure_logging(args.log_format, args.log_level)
    config = load_config(args)
    trio.run(lambda: serve_until_signalled(config, ready_file=args.ready_file))
    return 0


def _check(args: argparse.Namespace) -> int:
    from broker.errors import ConfigError
    from broker.log.check import check_data_dir, report_lines

    try:
        config = BrokerConfig.from_toml(args.config) if args.config else BrokerConfig()
    except ConfigError as exc:
        print(f"dualmq: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.data_dir.is_dir():
        print(f"dualmq: error: data dir {args.data_dir} does not exist or is not a directory", file=sys.stderr)
        return EXIT_USAGE
    result = check_data_dir(args.data_dir, config.log.index_interval_bytes)
    print("\n".join(report_lines(result)))
    return EXIT_FAILURE if result.damaged else 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command != "serve":
        # Client commands print results on stdout; the SDK's progress logs stay quiet.
        configure_logging("auto", "warning")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 0
    except BaseException as exc:
        expected = _expected_failure(exc)
        if expected is None:
            raise
        print(f"dualmq: error: {expected}", file=sys.stderr)
        return EXIT_FAILURE


def _expected_failure(exc: BaseException) -> str | None:
    """The one-line message for a failure a user can cause and fix, else None (a bug).

    trio wraps errors raised inside nurseries in exception groups; look through them.
    """
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _expected_failure(inner)
            if found is not None:
                return found
        return None
    if isinstance(exc, BrokerError):
        return str(exc)
    from dualmq.errors import DualmqError

    if isinstance(exc, DualmqError):
        return str(exc)
    if isinstance(exc, OSError):  # e.g. the listen address is already in use
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return None
