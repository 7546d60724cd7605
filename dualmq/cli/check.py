"""``dualmq check``: a read-only verdict on every segment of a data directory.

The checks are the ones the broker's start-up recovery runs (``broker/log/verify.py``), but
nothing is cut or rewritten: the report says what is intact, what is damaged (file, byte
position, reason) and what the next start would cut. Exit status 0 intact, 1 damage found,
2 usage error — so a script can run it before starting a broker on a suspicious disk.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from broker.config import BrokerConfig
from broker.errors import ConfigError
from dualmq.cli.common import EXIT_FAILURE, EXIT_USAGE


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Register ``check`` on the CLI's subcommand parser."""
    check = commands.add_parser(
        "check", help="verify every segment of a data directory, read-only (exit 0 intact, 1 damaged)",
        description="Verify every batch of every segment (offsets, lengths, CRC-32C, the chain between "
                    "segments, index files) without changing anything; print what is damaged and what "
                    "the next start's recovery would cut. Exit status: 0 intact, 1 damage found, 2 usage error.")
    check.add_argument("--data-dir", type=Path, required=True, help="the broker's data directory")
    check.add_argument("--config", type=Path, help="TOML config file (for [log] index_interval_bytes)")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
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
