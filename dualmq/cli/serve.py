"""``dualmq serve``: build the broker from a config file plus flags and run it until SIGINT/SIGTERM.

Both signals stop it cleanly (flush, close, release the data dir); the exit status is 130 after
SIGINT (Ctrl-C) and 0 after SIGTERM.

Expected failures (bad config value, locked or unwritable data dir, port in use) end in one
clear line on standard error (see ``dualmq.cli.main``), never a traceback.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

import attrs
import trio

from broker.config import BrokerConfig
from dualmq.cli.common import EXIT_INTERRUPTED, host_port
from dualmq.logging import LOG_FORMATS, LOG_LEVELS, configure_logging


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Register ``serve`` on the CLI's subcommand parser."""
    serve = commands.add_parser("serve", help="run the broker (Kafka protocol and RESP listeners)")
    serve.add_argument("--config", type=Path, help="TOML config file (flags override it)")
    serve.add_argument("--data-dir", type=Path, help="where the log lives (default ./dualmq-data)")
    serve.add_argument("--kafka", type=host_port, metavar="HOST:PORT",
                       help="Kafka listener, pull mode (default 127.0.0.1:9092; port 0 = any free port)")
    serve.add_argument("--resp", type=host_port, metavar="HOST:PORT",
                       help="RESP listener, push mode (default 127.0.0.1:6379; port 0 = any free port)")
    serve.add_argument("--http", type=host_port, metavar="HOST:PORT",
                       help="serve /metrics (Prometheus) and the live dashboard here (default: off; "
                            "port 0 = any free port)")
    serve.add_argument("--node-id", type=int, metavar="N",
                       help="this broker's id in a cluster (with --cluster; docs/cluster.md)")
    serve.add_argument("--cluster", metavar="etcd://HOST:PORT[,HOST:PORT]",
                       help="join the cluster coordinated by this etcd (default: a single broker)")
    serve.add_argument("--fsync", choices=("always", "interval", "never"),
                       help="when appended data is fsynced (default interval)")
    serve.add_argument("--ready-file", type=Path,
                       help='write {"kafka": ..., "resp": ..., "pid": ...} here once listening '
                            '(and "http" with --http)')
    serve.add_argument("--log-format", choices=LOG_FORMATS, default="auto",
                       help="console on a terminal, JSON otherwise (auto)")
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                       help="the least important log lines shown (default info)")
    serve.set_defaults(handler=_serve)


def load_config(args: argparse.Namespace) -> BrokerConfig:
    """The config file (or defaults) with command-line flags applied on top."""
    config = BrokerConfig.from_toml(args.config) if args.config else BrokerConfig()
    if args.data_dir is not None:
        config = attrs.evolve(config, data_dir=args.data_dir)
    if args.kafka is not None:
        config = attrs.evolve(config, kafka=attrs.evolve(config.kafka, listen=args.kafka))
    if args.resp is not None:
        config = attrs.evolve(config, resp=attrs.evolve(config.resp, listen=args.resp))
    if args.http is not None:
        config = attrs.evolve(config, http=attrs.evolve(config.http, listen=args.http))
    if args.node_id is not None or args.cluster is not None:
        changes = {"node_id": args.node_id} if args.node_id is not None else {}
        if args.cluster is not None:
            changes["etcd"] = args.cluster
        config = attrs.evolve(config, cluster=attrs.evolve(config.cluster, **changes))
    if args.fsync is not None:
        config = attrs.evolve(config, log=attrs.evolve(config.log, fsync=args.fsync))
    return config


def _serve(args: argparse.Namespace) -> int:
    # Imported here: the daemon pulls in both front-ends, which the client commands
    # (publish, consume, ...) never need, so they start faster without it.
    from dualmq.daemon import serve_until_signalled

    configure_logging(args.log_format, args.log_level)
    config = load_config(args)
    stopped_by = trio.run(lambda: serve_until_signalled(config, ready_file=args.ready_file))
    # SIGINT (Ctrl-C) -> 130, as a shell expects; SIGTERM, a service manager's stop -> 0.
    return EXIT_INTERRUPTED if stopped_by == signal.SIGINT else 0
