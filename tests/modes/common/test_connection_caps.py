"""Per-IP connection caps on both ports (``resp.maxclients_per_ip``, Kafka's
``max.connections.per.ip`` as ``kafka.max_connections_per_ip``).

Every test client comes from a loopback address; binding a client to 127.0.0.2 (still
loopback, still talking to 127.0.0.1) shows that the cap counts per source address. Push
mode's protected mode counts 127.0.0.2 as remote (Redis's rule), so it is off here.
"""

from __future__ import annotations

import subprocess

import trio
from structlog.testing import capture_logs

from tests.modes.common.servers import TIMEOUT, RespClient, push_broker
from tests.modes.pull.raw import RawKafka, pull_broker
from tests.modes.pull.test_golden import frame
from tests.support import require_binary

API_VERSIONS_V0 = bytes.fromhex("0012 0000 00000063 0001 63")
PER_IP_REFUSAL = b"-ERR max number of clients per IP address reached\r\n"


async def wait_for(predicate, what: str) -> None:
    """Poll ``predicate`` until true; fail after TIMEOUT naming ``what`` was awaited."""
    with trio.move_on_after(TIMEOUT):
        while not await predicate():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"timed out waiting for {what}")


async def test_resp_per_ip_cap_refuses_with_an_error_line_and_frees_the_slot_on_close():
    redis_cli = require_binary("redis-cli", "redis-tools")
    async with push_broker(maxclients_per_ip=2, protected_mode=False) as address:
        first = await RespClient.connect(address)
        second = await RespClient.connect(address)
        for client in (first, second):
            await client.send(b"PING\r\n")
            await client.expect(b"+PONG\r\n")
        with capture_logs() as logs:
            third = await RespClient.connect(address)
            assert await third.read_until_closed() == PER_IP_REFUSAL
            # A real client shows the user why.
            refused = await trio.run_process(
                [redis_cli, "-h", address[0], "-p", str(address[1]), "PING"],
                capture_stdout=True, capture_stderr=True, check=False, stdin=subprocess.DEVNULL)
        output = (refused.stdout + refused.stderr).decode()
        assert "max number of clients per IP address reached" in output, output
        rejected = [entry for entry in logs if entry["event"] == "connection_rejected"]
        assert [entry["reason"] for entry in rejected] == ["resp.maxclients_per_ip reached"] * 2
        assert rejected[0]["limit"] == 2
        # Another source address has its own count.
        other = await RespClient.connect(address, source="127.0.0.2")
        await other.send(b"PING\r\n")
        await other.expect(b"+PONG\r\n")
        # Closing one of 127.0.0.1's connections frees its slot for the next one.
        await first.aclose()

        async def slot_free() -> bool:
            candidate = await RespClient.connect(address)
            try:
                await candidate.send(b"PING\r\n")
                await candidate.expect(b"+PONG\r\n")
                return True
            except (AssertionError, EOFError, trio.BrokenResourceError):
                return False  # refused: the closed connection's slot is not free yet
            finally:
                await candidate.aclose()

        await wait_for(slot_free, "127.0.0.1's slot to be freed")
        info = await second.info()
        assert int(info["rejected_connections"]) >= 2
        assert info["rejected_connections"] == info["rejected_connections_per_ip"]
        assert info["rejected_connections_maxclients"] == "0"
        assert info["maxclients_per_ip"] == "2"
        for client in (second, third, other):
            await client.aclose()


async def kafka_from(host: str, port: int, source: str) -> RawKafka:
    sock = trio.socket.socket()
    with trio.fail_after(TIMEOUT):
        await sock.bind((source, 0))
        await sock.connect((host, port))
    return RawKafka(trio.SocketStream(sock))


async def test_kafka_per_ip_cap_closes_the_extra_connection_as_kafka_does(tmp_path):
    async with pull_broker(tmp_path, max_connections_per_ip=2) as broker:
        first = await broker.connect()
        second = await broker.connect()
        for client in (first, second):
            await client.send(frame(API_VERSIONS_V0))
            assert (await client.read_frame())[4:8] == bytes.fromhex("00000063")
        with capture_logs() as logs:
            third = await broker.connect()
            await third.expect_closed()  # Kafka says nothing: it just closes
        [rejected] = [entry for entry in logs if entry["event"] == "connection_rejected"]
        assert rejected["reason"] == "kafka.max_connections_per_ip reached" and rejected["limit"] == 2
        other = await kafka_from(broker.host, broker.port, "127.0.0.2")
        try:
            await other.send(frame(API_VERSIONS_V0))
            assert (await other.read_frame())[4:8] == bytes.fromhex("00000063")
        finally:
            await other.aclose()
        await first.aclose()

        async def slot_free() -> bool:
            candidate = await broker.connect()
            try:
                await candidate.send(frame(API_VERSIONS_V0))
                return (await candidate.read_frame())[4:8] == bytes.fromhex("00000063")
            except (EOFError, trio.BrokenResourceError):
                return False
            finally:
                await candidate.aclose()

        await wait_for(slot_free, "127.0.0.1's slot to be freed")
        # The open connection never noticed any of it.
        await second.send(frame(API_VERSIONS_V0))
        assert (await second.read_frame())[4:8] == bytes.fromhex("00000063")
