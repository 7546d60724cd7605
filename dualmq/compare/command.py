"""``dualmq compare``: the command-line front of the compare package.

The CLI (``dualmq/cli/``) owns the parser; this module contributes the subcommand, as each
module of ``dualmq/cli/`` does::

    from dualmq.compare import command as compare_command
    compare_command.add_parsers(commands)       # commands = parser.add_subparsers(...)

``add_parsers`` registers ``compare`` with ``set_defaults(handler=run_command)``; the CLI calls
``args.handler(args)`` and exits with its return value.

Examples::

    dualmq compare                                  # baseline, then late-joiner (embedded broker)
    dualmq compare slow-consumer broker-kill --json out.json --html out.html
    dualmq compare baseline --resp 127.0.0.1:6379 --modes push      # against a real redis-server
    dualmq compare --workload my.toml
    dualmq compare --list
"""

from __future__ import annotations

import argparse
import logging
import sys

import structlog
import trio

from dualmq.compare.report import ScenarioReport, render_text, write_json
from dualmq.compare.runner import MODES, clear_progress, run_workload, terminal_progress
from dualmq.compare.workload import DEFAULT_SCENARIOS, SCENARIOS, Workload, WorkloadError, scenario
from dualmq.errors import DualmqError

EXIT_FAILURE = 1
EXIT_USAGE = 2


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    if not modes or any(m not in MODES for m in modes):
        raise argparse.ArgumentTypeError(f"{text!r}: a comma-separated subset of {', '.join(MODES)}")
    return modes


def add_parsers(subcommands) -> None:
    """Add the ``compare`` subcommand to an ``argparse`` subparsers object."""
    names = ", ".join(SCENARIOS)
    parser = subcommands.add_parser(
        "compare", help="run one workload through pull and push mode and compare the outcome",
        description="Run the same workload through pull mode (Kafka protocol) and push mode (RESP) and print "
                    "delivered / lost / duplicated / reordered / throughput / latency side by side, with the "
                    f"guarantee settings beside the numbers. Scenarios: {names}.")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"built-in scenarios to run (default: {' '.join(DEFAULT_SCENARIOS)})")
    parser.add_argument("--workload", action="append", default=[], metavar="FILE",
                        help="a TOML workload file (repeatable; see dualmq/compare/workload.py)")
    parser.add_argument("--list", action="store_true", help="list the built-in scenarios and exit")
    parser.add_argument("--messages", type=int, metavar="N", help="messages per producer (overrides the scenario)")
    parser.add_argument("--rate", type=float, metavar="MSG_PER_S", help="total send rate; 0 = full speed")
    parser.add_argument("--message-size", type=int, metavar="BYTES")
    parser.add_argument("--producers", type=int, metavar="N")
    parser.add_argument("--consumers", type=int, metavar="N")
    parser.add_argument("--partitions", type=int, metavar="N")
    parser.add_argument("--keys", type=int, metavar="N", help="distinct keys, round-robin (0 = no key)")
    parser.add_argument("--modes", type=_modes, default=MODES, metavar="pull,push")
    parser.add_argument("--broker", choices=("embedded", "subprocess"), default="embedded",
                        help="how to start the broker when no address is given (restart/kill scenarios "
                             "always use a subprocess)")
    parser.add_argument("--kafka", metavar="HOST:PORT", help="use this Kafka-protocol broker for pull mode")
    parser.add_argument("--resp", metavar="HOST:PORT", help="use this RESP server (e.g. redis-server) for push mode")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON (schema in report.py)")
    parser.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page with charts")
    parser.add_argument("--verbose", action="store_true", help="show the embedded broker's log")
    parser.set_defaults(handler=run_command)


def _workloads(args: argparse.Namespace) -> list[Workload]:
    overrides = dict(messages=args.messages, rate=args.rate, message_size=args.message_size,
                     producers=args.producers, consumers=args.consumers, partitions=args.partitions,
                     keys=args.keys)
    workloads = [scenario(name, **overrides) for name in args.scenarios]
    for path in args.workload:
        workload = Workload.from_toml(path)
        changes = {k: v for k, v in overrides.items() if v is not None}
        workloads.append(Workload.from_dict({**_fields(workload), **changes}) if changes else workload)
    if not workloads:
        workloads = [scenario(name, **overrides) for name in DEFAULT_SCENARIOS]
    return workloads


def _fields(workload: Workload) -> dict:
    import attrs

    values = attrs.asdict(workload, recurse=False)
    values["events"] = [attrs.asdict(e) for e in workload.events]
    return values


def run_command(args: argparse.Namespace) -> int:
    """Run the requested scenarios, print the table; returns the exit status."""
    if args.list:
        for name, values in SCENARIOS.items():
            print(f"{name:>15}  {values['description']}")
        return 0
    if not args.verbose:
        # The embedded broker logs through structlog in this process: keep the table readable.
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    modes = args.modes
    if args.kafka or args.resp:
        modes = tuple(m for m in modes if (args.kafka if m == "pull" else args.resp))
    try:
        workloads = _workloads(args)
    except WorkloadError as exc:
        print(f"dualmq compare: {exc}", file=sys.stderr)
        return EXIT_USAGE
    progress = terminal_progress()
    reports: list[ScenarioReport] = []

    async def main() -> None:
        for workload in workloads:
            print(f"running {workload.name} ({', '.join(modes)}) ...", file=sys.stderr, flush=True)
            result = await run_workload(workload, broker=args.broker, kafka=args.kafka, resp=args.resp,
                                        modes=modes, progress=progress)
            clear_progress()
            report = ScenarioReport.from_run(result)
            reports.append(report)
            print(render_text([report]), flush=True)

    try:
        trio.run(main)
    except (DualmqError, OSError, ValueError, RuntimeError) as exc:
        clear_progress()
        print(f"dualmq compare: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        write_json(reports, args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.html:
        from dualmq.compare.html import write_html

        write_html(reports, args.html)
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m dualmq.compare``), for use before the CLI hook exists."""
    parser = argparse.ArgumentParser(prog="dualmq")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["compare", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)
