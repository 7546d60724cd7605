"""The ``dualmq`` command line (also ``python -m dualmq``): one parser, a module per family.

A composition root (it may import the broker as well as the SDK). Each module below adds its
subcommands with ``add_parsers(commands)`` and hands each one a ``handler``; ``main`` parses,
calls ``args.handler(args)`` and turns an expected failure into one line on standard error.

=============== ==================================================================
``serve``       ``serve``: run the broker
``push``        ``publish``, ``subscribe`` (RESP, through ``dualmq.push``)
``check``       ``check``: a read-only verdict on a data directory's segments
``pull``        ``produce``, ``consume``, ``topics``, ``groups`` (Kafka, ``dualmq.pull``)
``acl``         ``acl add`` / ``list`` / ``remove``: Kafka ACLs on a running broker
``users``       ``users add`` / ``users list``: users in the config (Redis ACL or Kafka SCRAM), passwords hashed
``common``      exit codes, address options, Ctrl-C handling
``record_format`` kcat-style ``--format`` for ``consume``
=============== ==================================================================

``compare`` is contributed by ``dualmq.compare.command`` the same way.

Expected failures (bad config value, locked or unwritable data dir, port in use, broker
unreachable, wrong port) print one clear line on standard error and exit non-zero — never a
traceback. Ctrl-C (SIGINT) ends every command with exit status 130 and no traceback, wherever
it lands: commands with work to finish (``produce``, ``consume``, ``serve``) handle the signal
themselves, and ``main`` turns a ``KeyboardInterrupt`` anywhere else (also inside trio's
exception groups) into 130.

Logging: client commands configure it for warnings and above, rendered for a human on
standard error (the SDK's and an embedded broker's lines alike); ``compare`` for errors only,
since the embedded broker's warnings (a slow subscriber cut off...) are what it measures and
reports itself. ``serve`` configures its own (``--log-format``, ``--log-level``).
"""

from __future__ import annotations

import argparse
import sys

from broker.errors import BrokerError
from dualmq.logging import configure_logging
from dualmq import __version__
from dualmq.cli import acl, check, pull, push, serve, users
from dualmq.cli.common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE
from dualmq.compare import command as compare_command
from dualmq.errors import DualmqError

__all__ = ["build_parser", "main"]

# The log level of client commands (serve has its own flags); see the module docstring.
CLIENT_LOG_LEVEL = "warning"
COMMAND_LOG_LEVELS = {"compare": "error"}


def build_parser() -> argparse.ArgumentParser:
    """The whole ``dualmq`` parser; the order here is the order ``dualmq --help`` lists them in."""
    parser = argparse.ArgumentParser(
        prog="dualmq",
        description="One broker, two delivery models: Kafka-like pull mode and Redis-like push mode.",
    )
    parser.add_argument("--version", action="version", version=f"dualmq {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parsers(commands)
    push.add_parsers(commands)
    check.add_parsers(commands)
    pull.add_parsers(commands)
    acl.add_parsers(commands)
    users.add_parsers(commands)
    compare_command.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``dualmq`` command; returns the process exit status (the console script's entry)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command != "serve":
        # Results go to stdout; log lines (warnings and errors only) to stderr, for a human.
        # A command's own --verbose (compare's: "show the embedded broker's log") lowers it to info.
        level = "info" if getattr(args, "verbose", False) else COMMAND_LOG_LEVELS.get(args.command, CLIENT_LOG_LEVEL)
        configure_logging("console", level)
    try:
        return args.handler(args)
    except BaseException as exc:
        if _interrupted(exc):
            return EXIT_INTERRUPTED
        expected = _expected_failure(exc)
        if expected is None:
            raise
        print(f"dualmq: error: {expected}", file=sys.stderr)
        return EXIT_FAILURE


def _interrupted(exc: BaseException) -> bool:
    """Whether Ctrl-C ended the command: a KeyboardInterrupt, alone or among what trio gathered."""
    if isinstance(exc, BaseExceptionGroup):
        return any(_interrupted(inner) for inner in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt)


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
    if isinstance(exc, (BrokerError, DualmqError)):
        return str(exc)
    if isinstance(exc, OSError):  # e.g. the listen address is already in use
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return None
