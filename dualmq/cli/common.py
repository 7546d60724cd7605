"""What every ``dualmq`` subcommand module shares: exit codes, address options, Ctrl-C handling.

Kept apart from ``dualmq/cli/__init__.py`` so that the subcommand modules can import it
without importing the package that imports them.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Awaitable, Callable

import trio

from broker.config import parse_host_port
from dualmq.client_options import add_login_options

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what shells expect of a program stopped with Ctrl-C

DEFAULT_KAFKA = "127.0.0.1:9092"


def host_port(text: str) -> str:
    """``argparse`` type for ``HOST:PORT`` options: the text itself, checked as the broker checks it.

    Raises:
        argparse.ArgumentTypeError: not a valid ``HOST:PORT`` (argparse prints it as a usage error).
    """
    try:
        parse_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    return text


def bootstrap_servers(text: str) -> str:
    """``argparse`` type for a Kafka bootstrap list: ``HOST:PORT[,HOST:PORT...]`` as kcat's ``-b`` takes.

    Raises:
        argparse.ArgumentTypeError: an entry is not a valid ``HOST:PORT``.
    """
    for item in text.split(","):
        host_port(item.strip())
    return text


def add_kafka_option(parser: argparse.ArgumentParser) -> None:
    """``--kafka`` for a client command, also spelled as Kafka's tools do: ``-b`` (kcat) and
    ``--bootstrap-server`` (kafka-console-producer, kafka-topics...), with the login and TLS
    options (``dualmq.client_options``)."""
    parser.add_argument("--kafka", "-b", "--bootstrap-server", dest="kafka", type=bootstrap_servers,
                        default=DEFAULT_KAFKA, metavar="HOST:PORT",
                        help=f"the broker's Kafka address, or a comma-separated list (default {DEFAULT_KAFKA})")
    add_login_options(parser)


async def until_interrupted(body: Callable[[], Awaitable[None]]) -> bool:
    """Run ``body`` until it returns, or until Ctrl-C (SIGINT), which cancels it.

    For commands with work to finish after the user stops them — a producer sends what was
    typed, a group consumer commits what it printed — before exiting with ``EXIT_INTERRUPTED``.

    Returns:
        True if SIGINT ended it.
    """
    interrupted = False
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_sigint() -> None:
                nonlocal interrupted
                async for _ in signals:
                    interrupted = True
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_sigint)
            await body()
            nursery.cancel_scope.cancel()
    return interrupted
