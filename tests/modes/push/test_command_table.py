"""The command table agrees with Redis's own description of the same commands (``reference.json``).

COMMAND INFO shows the table's arity next to Redis's flags; CLIENT PAUSE WRITE holds what
the table marks ``writes``. Both must say what Redis says, or a client that introspects
commands (and the pause) would see a server that contradicts itself. The replies built from
the facts are compared with a live redis-server in tests/interop/test_redis_differential.py;
these checks need no server.
"""

from __future__ import annotations

import pytest

from modes.push.commands import COMMANDS
from modes.push.commands.introspection import FACTS

# Redis flags these "may_replicate" (COMMAND INFO hides that flag): PAUSE WRITE holds them.
MAY_REPLICATE = {"publish", "spublish"}


def _rows():
    for command in COMMANDS.values():
        yield command
        yield from (command.subcommands or {}).values()


ROWS = list(_rows())


@pytest.mark.parametrize("row", ROWS, ids=[row.fullname for row in ROWS])
def test_row_matches_redis(row) -> None:
    facts = FACTS[row.fullname]
    assert row.arity == facts["arity"]
    assert row.writes == ("write" in facts["flags"] or row.fullname in MAY_REPLICATE)


def test_every_fact_is_a_command_we_have() -> None:
    # A fact without a row would be dead data; regenerate reference.json after removing a command.
    assert set(FACTS) == {row.fullname for row in ROWS}


def test_subcommands_are_named_after_their_container() -> None:
    for command in COMMANDS.values():
        for sub in (command.subcommands or {}).values():
            assert sub.fullname == f"{command.fullname}|{sub.name.decode().lower()}"
