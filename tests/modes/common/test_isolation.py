"""A bug while serving one connection ends that connection only, in both front-ends.

A command handler (push) or an API handler (pull) that raises stands in for any bug: the
connection it ran for is closed, ``connection_failed`` is logged once with the traceback, and
every other client — and the listener — carries on.
"""

from __future__ import annotations

import attrs
import trio
import trio.testing
from structlog.testing import capture_logs

from modes.pull.registry import HANDLERS
from modes.push import commands
from tests.modes.common.servers import RespClient, push_broker
from tests.modes.pull.raw import pull_broker
from tests.modes.pull.test_golden import frame

API_VERSIONS_V0 = bytes.fromhex("0012 0000 00000063 0001 63")


def _raise_bug(*args: object) -> None:
    raise ZeroDivisionError("a bug in a handler")


async def test_push_a_failing_command_closes_only_its_connection(monkeypatch):
    broken = attrs.evolve(commands.COMMANDS[b"ECHO"], handler=_raise_bug)
    monkeypatch.setitem(commands.COMMANDS, b"ECHO", broken)
    monkeypatch.setattr(commands, "_SPELLINGS", {})  # forget cached lookups of the real one
    async with push_broker() as address:
        bystander = await RespClient.connect(address)
        victim = await RespClient.connect(address)
        await bystander.send(b"SUBSCRIBE news\r\n")
        await bystander.expect(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n")
        with capture_logs() as logs:
            await victim.send(b"ECHO hello\r\n")
            assert await victim.read_until_closed() == b""
            await trio.testing.wait_all_tasks_blocked()
        # The subscriber is still subscribed and still served; new clients are accepted.
        publisher = await RespClient.connect(address)
        await publisher.send(b"PUBLISH news still-here\r\n")
        await publisher.expect(b":1\r\n")
        await bystander.expect(b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$10\r\nstill-here\r\n")
        info = await publisher.info()
        assert info["connection_failures"] == "1"
        assert info["connected_clients"] == "2"
        failed = [entry for entry in logs if entry["event"] == "connection_failed"]
        assert len(failed) == 1 and failed[0]["exc_info"] is True
        closed = [entry for entry in logs if entry["event"] == "connection_closed"]
        assert [entry["reason"] for entry in closed] == ["internal error: ZeroDivisionError"]
        for client in (bystander, victim, publisher):
            await client.aclose()


async def test_pull_a_failing_api_handler_closes_only_its_connection(tmp_path, monkeypatch):
    async def broken_metadata(context, request):
        raise ZeroDivisionError("a bug in a handler")

    monkeypatch.setitem(HANDLERS, 3, attrs.evolve(HANDLERS[3], handler=broken_metadata))
    async with pull_broker(tmp_path) as broker:
        bystander = await broker.connect()
        victim = await broker.connect()
        with capture_logs() as logs:
            _, metadata = victim.encode(3, 1, {"topics": None})
            await victim.send(metadata)
            await victim.expect_closed()
            await trio.testing.wait_all_tasks_blocked()
        await bystander.send(frame(API_VERSIONS_V0))
        assert (await bystander.read_frame())[4:8] == bytes.fromhex("00000063")
        newcomer = await broker.connect()
        await newcomer.send(frame(API_VERSIONS_V0))
        assert (await newcomer.read_frame())[4:8] == bytes.fromhex("00000063")
        failed = [entry for entry in logs if entry["event"] == "connection_failed"]
        assert len(failed) == 1 and failed[0]["exc_info"] is True
        closed = [entry for entry in logs if entry["event"] == "connection_closed"]
        assert [entry["reason"] for entry in closed] == ["internal error: ZeroDivisionError"]
