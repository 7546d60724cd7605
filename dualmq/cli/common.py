"""What every ``dualmq`` subcommand module shares: exit codes, address options, Ctrl-C handling.

Kept apart from ``dualmq/cli/__init__.py`` so that the subcommand modules can import it
without importing the package that imports them.
"""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from broker.config import parse_host_port
from dualmq.errors import DualmqError

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what shells expect of a program stopped with Ctrl-C

DEFAULT_KAFKA = "127.0.0.1:9092"
# Read when --password is not given, so a password need not appear in ps or shell history
# (redis-cli reads REDISCLI_AUTH the same way).
PASSWORD_ENVIRONMENT_VARIABLE = "DUALMQ_PASSWORD"


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
    ``--bootstrap-server`` (kafka-console-producer, kafka-topics...)."""
    parser.add_argument("--kafka", "-b", "--bootstrap-server", dest="kafka", type=bootstrap_servers,
                        default=DEFAULT_KAFKA, metavar="HOST:PORT",
                        help=f"the broker's Kafka address, or a comma-separated list (default {DEFAULT_KAFKA})")
    parser.add_argument("--user", help="authenticate with SASL as this user (kafka.security_protocol "
                                       "SASL_PLAINTEXT, or SASL_SSL with --tls)")
    parser.add_argument("--password", help=f"the user's password (default: ${PASSWORD_ENVIRONMENT_VARIABLE})")
    parser.add_argument("--sasl-mechanism", choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
                        default="SCRAM-SHA-256", help="how to prove the password (default SCRAM-SHA-256)")
    add_tls_options(parser)


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    """``--tls`` and the files it may need, for any client command."""
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--ca-file", metavar="PATH", help="trust the broker certificates this CA signed "
                                                          "(default: the system's CAs); implies --tls")
    parser.add_argument("--cert-file", metavar="PATH", help="present this client certificate (mTLS); implies --tls")
    parser.add_argument("--key-file", metavar="PATH", help="the client certificate's key")


def _uses_tls(args: argparse.Namespace) -> bool:
    return bool(args.tls or args.ca_file or args.cert_file)


def kafka_security(args: argparse.Namespace) -> dict[str, Any]:
    """The SDK's security keyword arguments (kafka-python's names) for the options given.

    Raises:
        DualmqError: ``--user`` without a password (the CLI prints it as a one-line error).
    """
    tls = _uses_tls(args)
    settings: dict[str, Any] = {"ssl_cafile": args.ca_file, "ssl_certfile": args.cert_file,
                                "ssl_keyfile": args.key_file}
    if args.user:
        password = args.password if args.password is not None else os.environ.get(PASSWORD_ENVIRONMENT_VARIABLE)
        if password is None:
            raise DualmqError(f"--user needs --password or ${PASSWORD_ENVIRONMENT_VARIABLE}")
        settings.update(security_protocol="SASL_SSL" if tls else "SASL_PLAINTEXT",
                        sasl_mechanism=args.sasl_mechanism, sasl_plain_username=args.user,
                        sasl_plain_password=password)
    else:
        settings["security_protocol"] = "SSL" if tls else "PLAINTEXT"
    return settings


def resp_tls(args: argparse.Namespace) -> dict[str, Any]:
    """The push SDK's TLS keyword arguments (redis-py's names) for the options given."""
    return {"ssl": _uses_tls(args), "ssl_ca_certs": args.ca_file, "ssl_certfile": args.cert_file,
            "ssl_keyfile": args.key_file}


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
