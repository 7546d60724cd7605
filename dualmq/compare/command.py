"""``dualmq compare``: the command-line front of the compare package.

The CLI (``dualmq/cli/``) owns the parser; this module contributes the subcommand, as each
module of ``dualmq/cli/`` does::

    from dualmq.compare import command as compare_command
    compare_command.add_parsers(commands)       # commands = parser.add_subparsers(...)

``add_parsers`` registers ``compare`` with ``set_defaults(handler=run_command)``; the CLI calls
``args.handler(args)`` and exits with its return value. Its options are one table, ``OPTIONS``
(flags, then ``argparse`` settings): add an option there.

Two kinds of scenario run:

* **measured** (``baseline`` and the sweeps ``fan-out``, ``parallelism``, ``message-size``,
  ``compression``, ``rate``; ``sweeps``): every producer and consumer in its own process, the
  broker in another (``--broker embedded`` puts it in this one), rates over a steady window,
  each point the median of ``--runs`` runs;
* **in-process** (``late-joiner``, ``slow-consumer``, ``consumer-crash``, ``broker-restart``,
  ``broker-kill``, ``burst``, ``--workload FILE``; ``runner``): a timeline of events (joins,
  crashes, broker kills) applied at exact points of the stream, every message accounted for
  (delivered, lost and why, duplicated, reordered). Their rates are not a benchmark.

Logging is the CLI's (errors only; ``--verbose``: info, and the broker's log): this package
never configures it.

Against brokers given with ``--kafka`` / ``--resp``, every client compare opens (here and in
the role processes) logs in with ``--user``/``--password``/``--sasl-mechanism`` and connects
with ``--tls``/``--ca-file``/``--cert-file``/``--key-file``: the client commands' own options
(``dualmq.client_options``), applied to both modes (``security``); ``--resp-user`` /
``--resp-password`` override push mode's login. A broker compare starts has neither TLS nor
users, so these options without ``--kafka``/``--resp`` are a usage error.

Ctrl-C stops the run cleanly: the scenario running is cut short, its partial report is printed
(and written to ``--json``/``--html``) after the ones that finished, and the exit status is 130
(128 + SIGINT), like any Unix tool interrupted from the keyboard. A second Ctrl-C stops at once.

Examples::

    dualmq compare                                  # baseline, then late-joiner
    dualmq compare fan-out parallelism --html out.html --json out.json
    dualmq compare rate --kafka 127.0.0.1:9092 --resp 127.0.0.1:6379   # a real Kafka and a real Redis
    dualmq compare --kafka 127.0.0.1:9092 --resp 127.0.0.1:6379 --user alice --ca-file ca.crt   # secured
    dualmq compare baseline --seconds 0 --messages 20000 --runs 1      # a quick look
    dualmq compare --workload my.toml
    dualmq compare --cluster 3 broker-kill                            # etcd and 3 brokers; the leader is killed
    dualmq compare --list
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
import threading
from pathlib import Path

import trio

from dualmq.client_options import add_login_options, kafka_security, resp_login
from dualmq.compare.report import THROUGHPUT_CAVEAT, ScenarioReport, render_scenario
from dualmq.compare.runner import MODES, StopRequest, check_cluster, clear_progress, run_workload, terminal_progress
from dualmq.compare.security import ClientSecurity, leaves
from dualmq.compare.sweep_report import render_sweep, write_json
from dualmq.compare.sweep_runner import run_sweep
from dualmq.compare.sweeps import DEFAULT_RUNS, SWEEPS, SweepResult
from dualmq.compare.workload import SCENARIOS, Workload, WorkloadError, scenario
from dualmq.errors import DualmqError
from dualmq.etcd_process import find_etcd

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130   # 128 + SIGINT
# Errors a user can cause (a bad address, a broker that does not start): one line, no traceback.
USER_ERRORS = (DualmqError, OSError, ValueError, RuntimeError)
DEFAULT_SCENARIOS = ("baseline", "late-joiner")
CLUSTER_DEFAULT = "broker-kill"   # what ``--cluster N`` alone runs
# ``baseline`` is measured; the in-process scenario of that name stays for the Python API (lesson 09).
IN_PROCESS = tuple(name for name in SCENARIOS if name not in SWEEPS)


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    if not modes or any(m not in MODES for m in modes):
        raise argparse.ArgumentTypeError(f"{text!r}: a comma-separated subset of {', '.join(MODES)}")
    return modes


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text!r}: must be >= 0")
        return value
    return parse


# Every option of ``compare``: (flags, argparse settings). "measured" / "in-process" in a help
# text says which kind of scenario it applies to (both when it says neither).
OPTIONS: list[tuple[tuple[str, ...], dict]] = [
    (("--list",), dict(action="store_true", help="list the built-in scenarios and exit")),
    (("--workload",), dict(action="append", default=[], metavar="FILE",
                           help="an in-process TOML workload file (repeatable; see dualmq/compare/workload.py)")),
    (("--messages",), dict(type=int, metavar="N", help="messages per producer (measured: at least this many)")),
    (("--seconds",), dict(type=_positive(float), metavar="S",
                          help="measured: send for at least this long (default 3; 0 = --messages only)")),
    (("--runs",), dict(type=int, default=DEFAULT_RUNS, metavar="N",
                       help=f"measured: runs per point; the median and spread are reported (default {DEFAULT_RUNS})")),
    (("--rate",), dict(type=_positive(float), metavar="MSG_PER_S", help="total send rate; 0 = full speed")),
    (("--message-size",), dict(type=int, metavar="BYTES", help="bytes per message, the 32-byte header included")),
    (("--producers",), dict(type=int, metavar="N", help="producers (publishers), each in its own process when measured")),
    (("--consumers",), dict(type=int, metavar="N", help="consumers (subscribers); a sweep's own variable wins")),
    (("--partitions",), dict(type=int, metavar="N", help="partitions of pull mode's topic")),
    (("--keys",), dict(type=int, metavar="N", help="in-process: distinct keys, round-robin (0 = no key)")),
    (("--modes",), dict(type=_modes, default=MODES, metavar="pull,push", help="which modes to run (default: both)")),
    (("--broker",), dict(choices=("subprocess", "embedded"), default="subprocess",
                         help="where the broker runs when no address is given: its own process (default), or "
                              "inside compare's (restart/kill scenarios always use a process)")),
    (("--kafka",), dict(metavar="HOST:PORT", help="use this Kafka-protocol broker (e.g. a real Kafka) for pull mode")),
    (("--resp",), dict(metavar="HOST:PORT", help="use this RESP server (e.g. redis-server) for push mode")),
    (("--cluster",), dict(type=int, metavar="N",
                          help="in-process: run on N brokers coordinated on etcd, which compare starts (etcd must be "
                               "installed); pull's topic has replication factor min(3, N), min.insync.replicas 2; "
                               "broker-kill then kills partition 0's leader (N >= 3). With --kafka/--resp: the N "
                               "comma-separated nodes given (nothing is killed)")),
    (("--resp-user",), dict(metavar="NAME", help="ACL user for the --resp server only, instead of --user "
                                                 "(redis-cli's --user)")),
    (("--resp-password",), dict(metavar="PASSWORD",
                                help="password for the --resp server only, instead of --password (default: "
                                     "$REDISCLI_AUTH, as redis-cli)")),
    (("--json",), dict(metavar="FILE", help="also write every figure as JSON (schemas in report.py, sweep_report.py)")),
    (("--html",), dict(metavar="FILE", help="also write a self-contained HTML page with a chart per claim")),
    (("--verbose",), dict(action="store_true", help="log at info level and show the broker's log")),
    (("--dashboard",), dict(action="store_true",
                            help="the broker compare starts also serves the live dashboard (and /metrics); "
                                 "its URL is printed once the broker is up")),
]


# The login and TLS options (``dualmq.client_options``), for the usage error that names them.
SECURITY_FLAGS = (("--user", "user"), ("--password", "password"), ("--tls", "tls"), ("--ca-file", "ca_file"),
                  ("--cert-file", "cert_file"), ("--key-file", "key_file"))
USER_HELP = "log in as this user: SASL (--sasl-mechanism) on the --kafka broker, AUTH on the --resp server"


def _client_security(args: argparse.Namespace) -> ClientSecurity | str:
    """How the clients log in to the brokers given with --kafka / --resp, or the usage error to print.

    Push mode: --resp-user / --resp-password when given, else --user / --password, else
    $REDISCLI_AUTH as the ``default`` user's password (as redis-cli reads it).
    """
    given = [flag for flag, name in SECURITY_FLAGS if getattr(args, name)]
    if given and not (args.kafka or args.resp):
        return (f"{' / '.join(given)}: only for brokers given with --kafka / --resp (a broker compare starts "
                f"itself has neither TLS nor users)")
    if (args.resp_user is not None or args.resp_password is not None) and not args.resp:
        return "--resp-user / --resp-password go with --resp (a broker compare starts has no password)"
    try:
        kafka, resp = kafka_security(args), resp_login(args)
    except DualmqError as exc:
        return str(exc)
    if args.resp_user is not None or args.resp_password is not None or resp["password"] is None:
        password = args.resp_password if args.resp_password is not None else os.environ.get("REDISCLI_AUTH") or None
        if args.resp_user is not None and password is None:
            return f"--resp-user {args.resp_user} needs --resp-password (or $REDISCLI_AUTH)"
        if args.resp_user is not None or password is not None:
            resp.update(username=args.resp_user, password=password)
    return ClientSecurity(kafka=kafka if args.kafka else {}, resp=resp if args.resp else {})


def _described(name: str, description: str) -> str:
    """A scenario's line in ``--help``: its name, then its description wrapped beside it."""
    return textwrap.fill(description, 100, initial_indent=f"  {name:<16}", subsequent_indent=" " * 18) + "\n"


def add_parsers(subcommands) -> None:
    """Add the ``compare`` subcommand to an ``argparse`` subparsers object."""
    parser = subcommands.add_parser(
        "compare", help="run workloads through pull and push mode and compare what each delivered, how fast",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the same workload through pull mode (Kafka protocol) and push mode (RESP) and compare.\n\n"
                    "measured scenarios (each role in its own process, medians of --runs runs):\n"
                    + "".join(_described(name, sweep.description) for name, sweep in SWEEPS.items())
                    + "\nin-process scenarios (events at exact points, every message accounted for):\n"
                    + "".join(_described(name, SCENARIOS[name]["description"]) for name in IN_PROCESS),
        epilog="examples:\n  dualmq compare fan-out --html fan-out.html\n"
               "  dualmq compare rate --kafka 127.0.0.1:9092 --resp 127.0.0.1:6379\n"
               "  dualmq compare baseline --seconds 0 --messages 20000 --runs 1")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"scenarios to run (default: {' '.join(DEFAULT_SCENARIOS)}; see --list)")
    for flags, settings in OPTIONS:
        parser.add_argument(*flags, **settings)
    add_login_options(parser, user_help=USER_HELP)
    parser.set_defaults(handler=run_command)


def _overrides(args: argparse.Namespace) -> dict:
    return dict(messages=args.messages, rate=args.rate, message_size=args.message_size,
                producers=args.producers, consumers=args.consumers, partitions=args.partitions)


def _workloads(args: argparse.Namespace, names: list[str]) -> list[Workload]:
    overrides = dict(_overrides(args), keys=args.keys)
    workloads = [scenario(name, cluster=bool(args.cluster), **overrides) for name in names]
    for path in args.workload:
        workload = Workload.from_toml(path)
        changes = {k: v for k, v in overrides.items() if v is not None}
        workloads.append(Workload.from_dict({**_fields(workload), **changes}) if changes else workload)
    return workloads


def _fields(workload: Workload) -> dict:
    import attrs

    values = attrs.asdict(workload, recurse=False)
    values["events"] = [attrs.asdict(e) for e in workload.events]
    return values


def _cluster_refusal(args: argparse.Namespace, names: list[str], workloads: list[Workload]) -> str:
    """Why ``--cluster`` cannot run as asked ("" when it can, or was not given)."""
    if args.cluster is None:
        return ""
    if args.cluster < 1:
        return f"--cluster {args.cluster}: the number of brokers to run, at least 1"
    measured = [n for n in names if n in SWEEPS]
    if measured:
        return (f"--cluster runs the in-process scenarios only ({', '.join(IN_PROCESS)}); "
                f"{', '.join(measured)} measure one broker")
    if args.dashboard:
        return "--dashboard is served by one broker compare starts, not by a cluster"
    for workload in workloads:
        try:
            check_cluster(workload, args.cluster)
        except ValueError as exc:
            return str(exc)
        if (args.kafka or args.resp) and workload.needs_broker_process:
            return (f"scenario {workload.name!r} kills a node, which compare can do only to a cluster it starts "
                    f"itself: drop --kafka/--resp (or run a scenario that stops nothing)")
    return ""


def run_command(args: argparse.Namespace) -> int:
    """Run the requested scenarios, print their tables; returns the exit status."""
    if args.list:
        print("measured (every role in its own process; medians of --runs runs):")
        for name, sweep in SWEEPS.items():
            print(f"{name:>15}  {sweep.description}")
        print("in-process (events at exact points; every message accounted for):")
        for name in IN_PROCESS:
            print(f"{name:>15}  {SCENARIOS[name]['description']}")
        return 0
    names = list(args.scenarios) or ([] if args.workload else [CLUSTER_DEFAULT] if args.cluster
                                     else list(DEFAULT_SCENARIOS))
    unknown = [n for n in names if n not in SWEEPS and n not in SCENARIOS]
    if unknown:
        print(f"dualmq compare: unknown scenario(s) {', '.join(unknown)}; see dualmq compare --list", file=sys.stderr)
        return EXIT_USAGE
    if args.runs < 1:
        print("dualmq compare: --runs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    modes = args.modes
    if args.dashboard and (args.kafka or args.resp):
        print("dualmq compare: --dashboard is served by a broker compare starts; drop --kafka/--resp "
              "(or start that broker with dualmq serve --http HOST:PORT)", file=sys.stderr)
        return EXIT_USAGE
    if args.kafka or args.resp:
        modes = tuple(m for m in modes if (args.kafka if m == "pull" else args.resp))
    try:
        workloads = _workloads(args, [n for n in names if n not in SWEEPS])
    except WorkloadError as exc:
        print(f"dualmq compare: {exc}", file=sys.stderr)
        return EXIT_USAGE
    refused = _cluster_refusal(args, names, workloads)
    if refused:
        print(f"dualmq compare: {refused}", file=sys.stderr)
        return EXIT_USAGE
    if args.cluster and not (args.kafka or args.resp) and find_etcd() is None:
        print("dualmq compare: --cluster needs etcd to coordinate the brokers, and no 'etcd' program is on PATH "
              "(Debian/Ubuntu: apt-get install etcd-server)", file=sys.stderr)
        return EXIT_FAILURE
    security = _client_security(args)
    if isinstance(security, str):
        print(f"dualmq compare: {security}", file=sys.stderr)
        return EXIT_USAGE
    progress = terminal_progress()
    reports: list[ScenarioReport] = []
    sweeps: list[SweepResult] = []
    stop = StopRequest()
    measured_overrides = dict(_overrides(args), min_seconds=args.seconds)

    def show_broker_log(path: str) -> None:
        print(Path(path).read_text(errors="replace"), file=sys.stderr, end="", flush=True)

    async def run_all() -> None:
        for name in (n for n in names if n in SWEEPS):
            if stop.requested:
                break
            print(f"running {name} ({', '.join(modes)}) ...", file=sys.stderr, flush=True)
            result = await run_sweep(SWEEPS[name], runs=args.runs, broker=args.broker, kafka=args.kafka,
                                     resp=args.resp, modes=modes, overrides=measured_overrides, progress=progress,
                                     stop=stop, broker_log=show_broker_log if args.verbose else None,
                                     security=security, dashboard=args.dashboard)
            clear_progress()
            sweeps.append(result)
            print(render_sweep(result) + "\n", flush=True)
        for workload in workloads:
            if stop.requested:
                break
            print(f"running {workload.name} ({', '.join(modes)}) ...", file=sys.stderr, flush=True)
            result = await run_workload(workload, broker=args.broker, kafka=args.kafka, resp=args.resp,
                                        modes=modes, progress=progress, stop=stop, security=security,
                                        dashboard=args.dashboard, cluster=args.cluster or 0)
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
        found = list(leaves(exc))
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in found):
            stop.request()  # Ctrl-C before the handler was installed (or the second one)
        elif all(isinstance(leaf, USER_ERRORS) for leaf in found):
            for line in dict.fromkeys(str(leaf) for leaf in found):   # two consumers refused alike: once
                print(f"dualmq compare: {line}", file=sys.stderr)
            status = EXIT_FAILURE
        else:
            raise
    if reports:
        print(f"note: {THROUGHPUT_CAVEAT}", flush=True)
    if stop.requested:
        clear_progress()
        status = EXIT_INTERRUPTED
        print("dualmq compare: interrupted (Ctrl-C); the report above covers what ran", file=sys.stderr)
    if (reports or sweeps) and args.json:
        write_json(args.json, sweeps, reports)
        print(f"wrote {args.json}", file=sys.stderr)
    if (reports or sweeps) and args.html:
        from dualmq.compare.sweep_html import write_page

        write_page(args.html, reports, sweeps)
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


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m dualmq.compare``), for use before the CLI hook exists."""
    parser = argparse.ArgumentParser(prog="dualmq")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["compare", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)
