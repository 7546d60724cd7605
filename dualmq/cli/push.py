"""The push-mode client commands of the ``dualmq`` CLI: publish, subscribe.

They talk RESP through the SDK (``dualmq.push``), so they work against ``dualmq serve`` and
a real Redis server alike.
"""

from __future__ import annotations

import argparse
import os
import sys

import trio

from dualmq.cli.common import EXIT_USAGE, host_port
from dualmq.client_options import add_tls_options, resp_tls
from dualmq.push import Gap, Publisher, subscribe

DEFAULT_RESP = "127.0.0.1:6379"
# Where --password is read from when not given, redis-cli's variable.
PASSWORD_VARIABLE = "REDISCLI_AUTH"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Register ``publish`` and ``subscribe`` on the CLI's subcommand parser."""
    resp_help = f"RESP address of the broker (default {DEFAULT_RESP})"
    publish = commands.add_parser("publish", help="push mode: publish one message to a channel")
    publish.add_argument("channel", help="the channel to publish to")
    publish.add_argument("message", help="the message (delivered only to those subscribed right now)")
    publish.add_argument("--resp", type=host_port, default=DEFAULT_RESP, metavar="HOST:PORT", help=resp_help)
    _add_credentials(publish)
    add_tls_options(publish)
    publish.set_defaults(handler=_publish)

    subscriber = commands.add_parser("subscribe", help="push mode: print messages as they are pushed")
    subscriber.add_argument("channels", nargs="*", metavar="CHANNEL", help="channels to subscribe to")
    subscriber.add_argument("--pattern", action="append", default=[], metavar="PATTERN",
                            help="also subscribe to a glob pattern (repeatable)")
    subscriber.add_argument("--max", type=int, default=None, metavar="N", help="exit after N messages")
    subscriber.add_argument("--reconnect", action="store_true",
                            help="reconnect when the connection drops, reporting the gap")
    subscriber.add_argument("--resp", type=host_port, default=DEFAULT_RESP, metavar="HOST:PORT", help=resp_help)
    _add_credentials(subscriber)
    add_tls_options(subscriber)
    subscriber.set_defaults(handler=_subscribe)


def _add_credentials(parser: argparse.ArgumentParser) -> None:
    """``--user`` / ``--password``, as redis-cli's ``--user`` / ``--pass`` (and its REDISCLI_AUTH)."""
    parser.add_argument("--user", default=None, metavar="NAME",
                        help="ACL user to authenticate as (default: Redis's 'default' user)")
    parser.add_argument("--password", default=None, metavar="PASSWORD",
                        help=f"password of --user, or the broker's requirepass; default: ${PASSWORD_VARIABLE} "
                             "if set (safer: a command line is visible to other users of the machine)")


def _credentials(args: argparse.Namespace) -> dict[str, str | None]:
    password = args.password if args.password is not None else os.environ.get(PASSWORD_VARIABLE) or None
    if args.user is not None and password is None:
        raise SystemExit(f"dualmq: error: --user {args.user} needs --password (or ${PASSWORD_VARIABLE})")
    return {"username": args.user, "password": password}


def _publish(args: argparse.Namespace) -> int:
    async def run() -> int:
        async with Publisher(args.resp, **_credentials(args), **resp_tls(args)) as publisher:
            return await publisher.publish(args.channel, args.message)

    receivers = trio.run(run)
    print(f"delivered to {receivers} subscriber{'s' if receivers != 1 else ''}"
          + ("" if receivers else " (nobody was subscribed: the message is gone)"))
    return 0


def _subscribe(args: argparse.Namespace) -> int:
    if not args.channels and not args.pattern:
        print("dualmq: error: name at least one CHANNEL or --pattern", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> None:
        seen = 0
        async with subscribe(args.resp, *args.channels, patterns=args.pattern,
                             reconnect=args.reconnect, **_credentials(args), **resp_tls(args)) as subscription:
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
