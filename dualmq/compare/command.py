"""``dualmq compare``: the command-line front of the compare package.

The CLI (``dualmq/cli/``) owns the parser; this module contributes the subcommand, as each
module of ``dualmq/cli/`` does::

    from dualmq.compare import command as compare_command
    compare_command.add_parsers(commands)       # commands = parser.add_subparsers(...)

``add_parsers`` registers ``compare`` with ``set_defaults(handler=run_command)``; the CLI calls
``args.handler(args)`` and exits with its return value.

Ctrl-C stops the run cleanly: the scenario running is cut short, its partial report is printed
(and written to ``--json``/``--html``) after the ones that finished, and the exit status is 130
(128 + SIGINT), like any Unix tool interrupted from the keyboard. A second Ctrl-C stops at once.

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
import signal
import sys
import threading

import structlog
import trio

from dualmq.compare.report import THROUGHPUT_CAVEAT, ScenarioReport, render_scenario, write_json
from dualmq.compare.runner import MODES, StopRequest, clear_progress, run_workload, terminal_progress
from dualmq.compare.workload import DEFAULT_SCENARIOS, SCENARIOS, Workload, WorkloadError, scenario
from dualmq.errors import DualmqError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130   # 128 + SIGINT
# Errors a user can cause (a bad address, a broker that does not start): one line, no traceback.
USER_ERRORS = (DualmqError, OSError, ValueError, RuntimeError)


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
    parser.add_argument("--dashboard", action="store_true",
                        help="serve the live dashboard (and /metrics) from the broker compare starts; "
                             "its URL is printed when the broker is up")
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
    if args.dashboard:
        workloads = [Workload.from_dict({**_fields(w), "broker": {**w.broker, "http": {"listen": "127.0.0.1:0"}}})
                     for w in workloads]
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
        # Its warnings (a slow subscriber cut off ...) are what the report counts and explains.
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    modes = args.modes
    if args.dashboard and (args.kafka or args.resp):
        print("dualmq compare: --dashboard is served by a broker compare starts; drop --kafka/--resp "
              "(or start that broker with dualmq serve --http HOST:PORT)", file=sys.stderr)
        return EXIT_USAGE
    if args.kafka or args.resp:
        modes = tuple(m for m in modes if (args.kafka if m == "pull" else args.resp))
    try:
        workloads = _workloads(args)
    except WorkloadError as exc:
        print(f"dualmq compare: {exc}", file=sys.stderr)
        return EXIT_USAGE
    progress = terminal_progress()
    reports: list[ScenarioReport] = []
    stop = StopRequest()

    async def run_all() -> None:
        for workload in workloads:
            if stop.requested:
                break
            print(f"running {workload.name} ({', '.join(modes)}) ...", file=sys.stderr, flush=True)
            result = await run_workload(workload, broker=args.broker, kafka=args.kafka, resp=args.resp,
                                        modes=modes, progress=progress, stop=stop)
            clear_progress()
            report = ScenarioReport.from_run(result)
            reports.append(report)
            print(render_scenario(report) + "\n", flush=True)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            if threading.current_thread() is threading.main_thread():
                await nursery.start(_stop_on_ctrl_c, stop, nursery.cancel_scope)
            await run_all()
            nursery.cancel_scope.cancel()

    status = 0
    try:
        trio.run(main)
    except BaseException as exc:  # sorted below: Ctrl-C, a user's error, or a bug (re-raised)
        clear_progress()
        leaves = _leaf_exceptions(exc)
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            stop.request()  # Ctrl-C before the handler was installed (or the second one)
        elif all(isinstance(leaf, USER_ERRORS) for leaf in leaves):
            for leaf in leaves:
                print(f"dualmq compare: {leaf}", file=sys.stderr)
            status = EXIT_FAILURE
        else:
            raise
    if reports:
        print(f"note: {THROUGHPUT_CAVEAT}", flush=True)
    if stop.requested:
        clear_progress()
        status = EXIT_INTERRUPTED
        print("dualmq compare: interrupted (Ctrl-C); the report above covers what ran", file=sys.stderr)
    if reports and args.json:
        write_json(reports, args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if reports and args.html:
        from dualmq.compare.html import write_html

        write_html(reports, args.html)
        print(f"wrote {args.html}", file=sys.stderr)
    return status


async def _stop_on_ctrl_c(stop: StopRequest, everything: trio.CancelScope,
                          task_status=trio.TASK_STATUS_IGNORED) -> None:
    """First Ctrl-C: stop the scenario running (its partial report is still made). Second: stop now."""
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            if stop.requested:
                everything.cancel()
                return
            clear_progress()
            print("\nstopping (Ctrl-C again to stop at once) ...", file=sys.stderr, flush=True)
            stop.request()


def _leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, as trio's nurseries wrap them."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaf_exceptions(inner)]
    return [exc]


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m dualmq.compare``), for use before the CLI hook exists."""
    parser = argparse.ArgumentParser(prog="dualmq")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["compare", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)
