"""What ACL checks cost a PUBLISH, in µs per command (no sockets, one process).

Three publishers run the same pipelined PUBLISHes through ``PushServer.execute``:

* **default** — the ``default`` user as Redis starts it (every command, every channel): the
  reference. Dispatch skips the ACL checks for it with one attribute test per batch.
* **password** — ``default`` with a password, the client authenticated: the same user rights,
  so the same path; shows that requiring a password costs the hot path nothing.
* **restricted** — a user allowed ``publish`` on ``&ch*`` only: every command goes through the
  permission check (command set lookup, channel glob).

Each figure is the median of several repetitions; the ratio is to the ``default`` run of the
same invocation.

Run::

    .venv/bin/python bench/push_acl_cost.py            # ~15 s
    .venv/bin/python bench/push_acl_cost.py --quick
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from push_loop_micro import bench_run_batch  # noqa: E402

from modes.push.client import Client  # noqa: E402
from modes.push.commands.acl import refresh_client  # noqa: E402
from modes.push.server import PushServer  # noqa: E402

USERS = ("default", "password", "restricted")


def _as(kind: str, servers: list[PushServer]) -> Callable[[PushServer, Client], None]:
    """A ``prepare`` hook making the publisher a ``kind`` user (see the module docstring)."""
    def prepare(server: PushServer, publisher: Client) -> None:
        if kind == "password":
            server.acl.set_user("default", ["resetpass", ">bench-password"])
            publisher.authenticated = True
        elif kind == "restricted":
            publisher.user = server.acl.set_user("pub", ["on", "nopass", "-@all", "+publish", "&ch*"])
            publisher.authenticated = True
        refresh_client(server, publisher)
        assert publisher.unrestricted == (kind != "restricted")
        servers.append(server)
    return prepare


def bench(kind: str, pipeline: int, subscribers: int, repeats: int, calls: int) -> float:
    """µs per PUBLISH for a publisher of ``kind``; fails if any PUBLISH was refused."""
    servers: list[PushServer] = []
    figure = bench_run_batch(pipeline, subscribers, repeats, calls, prepare=_as(kind, servers))
    assert not servers[0].acl_log.denied, f"{kind}: PUBLISHes were refused, the figure is meaningless"
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 9
    scale = 4 if args.quick else 1
    print("ACL cost of PUBLISH (run_batch, medians; µs per command; ratio to default)")
    print(f"   {'pipeline':>8} {'subs':>4} {'default':>8} {'password':>14} {'restricted':>14}")
    for pipeline, subs in ((1, 0), (16, 0), (16, 1), (64, 10)):
        calls = 20_000 // pipeline // scale + 50
        figures = {kind: bench(kind, pipeline, subs, repeats, calls) for kind in USERS}
        base = figures["default"]
        print(f"   {pipeline:>8} {subs:>4} {base:8.2f} "
              f"{figures['password']:7.2f} ({figures['password'] / base:4.2f}) "
              f"{figures['restricted']:7.2f} ({figures['restricted'] / base:4.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
