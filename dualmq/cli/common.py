"""What every ``dualmq`` subcommand module shares: exit codes and the HOST:PORT argument type.

Kept apart from ``dualmq/cli/__init__.py`` so that the subcommand modules can import it
without importing the package that imports them.
"""

from __future__ import annotations

import argparse

from broker.config import parse_host_port

EXIT_USAGE = 2
EXIT_FAILURE = 1


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
