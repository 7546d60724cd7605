"""Pipelined PUBLISHes run as one fan-out (dispatch's fast path) are observably one by one.

A read that brings nothing but PUBLISHes to one channel is published as one run
(``PubSub.publish_many``), and a lone PUBLISH skips the holding back of a batch
(``pubsub.publish_alone``). These tests run the push server in-process, without sockets or
tasks (``PushServer.execute`` is what both drivers call per read; inside ``trio.run``
only because closing a connection reads trio's clock), and compare every byte
each client is sent, who got cut off, and the broker's counters with the reference: the
same commands, one read per command, through the careful one-by-one path.

The edge cases the fast path must keep: a run interrupted by SUBSCRIBE (of the publisher
or of another client), a subscriber that crosses its hard limit in the middle of a run, a
CLIENT REPLY SKIP or OFF inside or before a run, pattern subscribers, RESP3 subscribers.
"""

from __future__ import annotations

import attrs
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.channels import PubSub
from broker.config import BrokerConfig, RespConfig
from broker.stats import ServerInfo
from modes.common.listener import Connection, ConnectionTable
from modes.push import commands as commands_module
from modes.push.client import Client
from modes.push.server import PushServer, connection_limits


def _cmd(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def _message(channel: bytes, payload: bytes) -> bytes:
    return b"*3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(channel), channel, len(payload), payload)


@attrs.define
class _Driver:
    """A driver with nothing to wait for: output queued outside a batch is noted dirty."""

    server: PushServer
    name: str = "in-process"

    def write_refused(self, client: Client) -> None:
        raise AssertionError("no socket here")

    def flush_soon(self, client: Client) -> None:
        self.server.dirty.append(client)


class _Harness:
    """A push server and its clients, fed reads by hand; output collected per client."""

    def __init__(self, clients: int, hard_limit: int = 0) -> None:
        config = BrokerConfig(resp=RespConfig(listen="127.0.0.1:0", pubsub_hard_limit=hard_limit,
                                              pubsub_soft_limit=0))
        self.server = PushServer(config=config.resp, pubsub=PubSub(),
                                 info=ServerInfo(config=config, started_at_ms=0))
        self.server.connections = ConnectionTable(mode="push", limits=connection_limits(config.resp),
                                                  handler=None)
        self.server.driver = _Driver(self.server)
        self.clients = [self._client(index + 1) for index in range(clients)]
        self.received = [b""] * clients

    def _client(self, conn_id: int) -> Client:
        conn = Connection(id=conn_id, stream=None, peer_address=("127.0.0.1", conn_id),
                          local_address=("127.0.0.1", 0), peer=f"127.0.0.1:{conn_id}", local="127.0.0.1:0",
                          opened_ms=0)
        client = self.server.new_client(conn)
        self.server.clients[conn_id] = client
        return client

    def closed(self, index: int) -> bool:
        return self.clients[index].conn.cancel_scope.cancel_called

    def read(self, index: int, data: bytes, even_if_closed: bool = False) -> None:
        """One read of client ``index``: run its batch as the drivers do (skipped once closed)."""
        if self.closed(index) and not even_if_closed:
            return
        server = self.server
        server.in_batch = True
        try:
            if server.execute(self.clients[index], data, 0):
                self.clients[index].conn.close("must close")
        finally:
            server.in_batch = False
            server.dirty.clear()

    def drain(self, index: int) -> None:
        """Client ``index`` reads everything sent to it so far."""
        self.received[index] += self.clients[index].outbox.take_bytes()

    def outcome(self) -> tuple:
        for index in range(len(self.clients)):
            self.drain(index)
        return (self.received, [self.closed(i) for i in range(len(self.clients))],
                self.server.pubsub.statistics(), self.server.commands_processed)


async def _in_trio(function, *args):
    """Closing a connection needs trio's clock: run ``function`` inside ``trio.run``."""
    return function(*args)


def _replay(program: list[tuple], fast: bool, clients: int, hard_limit: int) -> tuple:
    """Run ``program`` (("read", client, [command bytes, ...]) and ("drain", client) steps):
    with ``fast``, each read as one batch; without, each command as a read of its own, one
    by one through dispatch's loop, with the fast paths turned off (as before they existed)."""
    with pytest.MonkeyPatch.context() as patch:
        if not fast:
            patch.setattr(commands_module, "_publishes_only", lambda server, client, commands: False)
        harness = _Harness(clients, hard_limit)
        for step in program:
            if step[0] == "drain":
                harness.drain(step[1])
            elif harness.closed(step[1]):
                continue  # a closed connection is read no more
            elif fast:
                harness.read(step[1], b"".join(step[2]))
            else:
                # (A client cut off by its own command's reply still runs the rest of the
                # read's batch: the drivers stop reading it only after the batch.)
                for command in step[2]:
                    harness.read(step[1], command, even_if_closed=True)
        return harness.outcome()


async def test_a_run_of_publishes_is_one_fan_out_with_every_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = []
    real = PubSub.publish_many

    def spy(pubsub, channel, payloads, make_frame):
        runs.append(real(pubsub, channel, payloads, make_frame))
        return runs[-1]

    monkeypatch.setattr(PubSub, "publish_many", spy)
    harness = _Harness(3)
    harness.read(1, _cmd(b"SUBSCRIBE", b"ch"))
    harness.read(2, _cmd(b"SUBSCRIBE", b"ch"))
    harness.drain(1)
    harness.drain(2)
    harness.read(0, _cmd(b"PUBLISH", b"ch", b"a") + _cmd(b"PUBLISH", b"ch", b"b") + _cmd(b"PUBLISH", b"ch", b"c"))
    received, closed, stats, _ = harness.outcome()
    assert received[0] == b":2\r\n" * 3
    frames = _message(b"ch", b"a") + _message(b"ch", b"b") + _message(b"ch", b"c")
    assert received[1] == received[2] == b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n" + frames
    assert stats.messages_published == 3 and stats.frames_delivered == 6
    assert harness.clients[0].last_command == b"PUBLISH"
    assert runs == [2], "the run was not published as one fan-out"
    # Spelt differently, the same run goes one by one (the column check compares the words
    # as sent), with the same result.
    harness.read(0, _cmd(b"PUBLISH", b"ch", b"d") + _cmd(b"publish", b"ch", b"e"))
    received, *_ = harness.outcome()
    assert runs == [2]
    assert received[0] == b":2\r\n" * 5
    assert received[1].endswith(frames + _message(b"ch", b"d") + _message(b"ch", b"e"))


async def test_a_subscribe_between_two_runs_sees_only_the_second() -> None:
    """Another client's SUBSCRIBE read between two runs: the first run reached nobody."""
    harness = _Harness(2)
    harness.read(0, _cmd(b"PUBLISH", b"ch", b"early") * 4)
    harness.read(1, _cmd(b"SUBSCRIBE", b"ch"))
    harness.read(0, _cmd(b"PUBLISH", b"ch", b"late") * 4)
    received, _, stats, _ = harness.outcome()
    assert received[0] == b":0\r\n" * 4 + b":1\r\n" * 4
    assert received[1] == b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n" + _message(b"ch", b"late") * 4
    assert stats.messages_dropped_no_subscriber == 4


async def test_the_publisher_subscribing_inside_its_run_stops_the_run() -> None:
    """PUBLISH, SUBSCRIBE, PUBLISH in one read: not a run; RESP2 then refuses the PUBLISH."""
    harness = _Harness(1)
    harness.read(0, _cmd(b"PUBLISH", b"ch", b"a") + _cmd(b"SUBSCRIBE", b"ch") + _cmd(b"PUBLISH", b"ch", b"b"))
    received, *_ = harness.outcome()
    assert received[0] == (b":0\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
                           b"-ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT"
                           b" / RESET are allowed in this context\r\n")


async def test_a_subscriber_crossing_its_hard_limit_mid_run_is_cut_there() -> None:
    """The run would take a subscriber past its hard limit: published one by one instead, so
    it gets the messages before the limit, later replies count one subscriber fewer."""
    frame = _message(b"ch", b"x" * 20)
    subscribed = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
    harness = _Harness(3, hard_limit=3 * len(frame) + 1)
    harness.read(1, _cmd(b"SUBSCRIBE", b"ch"))  # never reads: its confirmation still pending
    harness.read(2, _cmd(b"SUBSCRIBE", b"ch"))
    harness.drain(2)
    # Three frames fit under the limit; with the confirmation before them, the third does not.
    harness.read(0, _cmd(b"PUBLISH", b"ch", b"x" * 20) * 3)
    harness.drain(2)
    harness.read(0, _cmd(b"PUBLISH", b"ch", b"y" * 20) * 3)
    received, closed, stats, _ = harness.outcome()
    assert received[0] == b":2\r\n:2\r\n:1\r\n" + b":1\r\n" * 3
    assert closed == [False, True, False]
    assert received[1] == subscribed + frame * 2
    assert received[2] == subscribed + frame * 3 + _message(b"ch", b"y" * 20) * 3
    assert stats.subscribers_disconnected_hard == 1


@pytest.mark.parametrize("switch, expected", [
    (b"SKIP", b":1\r\n:1\r\n"),  # the PUBLISH right after SKIP gets no reply
    (b"OFF", b""),
])
async def test_client_reply_inside_a_run(switch: bytes, expected: bytes) -> None:
    harness = _Harness(2)
    harness.read(1, _cmd(b"SUBSCRIBE", b"ch"))
    harness.clients[1].outbox.take_bytes()
    harness.read(0, _cmd(b"PUBLISH", b"ch", b"a") + _cmd(b"CLIENT", b"REPLY", switch)
                 + _cmd(b"PUBLISH", b"ch", b"b") * 3)
    received, *_ = harness.outcome()
    assert received[0] == b":1\r\n" + expected
    assert received[1] == _message(b"ch", b"a") + _message(b"ch", b"b") * 3
    # And a whole run after OFF (the fast path is not taken while replies are off):
    harness.read(0, _cmd(b"PUBLISH", b"ch", b"c") * 2)
    received, *_ = harness.outcome()
    assert received[0] == b":1\r\n" + expected + (b"" if switch == b"OFF" else b":1\r\n" * 2)


async def test_a_pattern_subscriber_gets_each_message_and_pmessage_in_turn() -> None:
    harness = _Harness(2)
    harness.read(1, _cmd(b"SUBSCRIBE", b"ch") + _cmd(b"PSUBSCRIBE", b"c*"))
    harness.clients[1].outbox.take_bytes()
    harness.read(0, _cmd(b"PUBLISH", b"ch", b"a") + _cmd(b"PUBLISH", b"ch", b"b"))
    received, *_ = harness.outcome()
    pmessage = b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\n%b\r\n"
    assert received[0] == b":2\r\n:2\r\n"
    assert received[1] == _message(b"ch", b"a") + pmessage % b"a" + _message(b"ch", b"b") + pmessage % b"b"


# -- batching is one by one: any program ------------------------------------------------------

_CLIENTS = 3
_COMMANDS = st.sampled_from([
    _cmd(b"PUBLISH", b"ch", b"p"), _cmd(b"PUBLISH", b"ch", b"p"), _cmd(b"PUBLISH", b"ch", b"q" * 30),
    _cmd(b"publish", b"ch", b"r"), _cmd(b"PUBLISH", b"other", b"s"), _cmd(b"PUBLISH", b"ch"),
    _cmd(b"SUBSCRIBE", b"ch"), _cmd(b"SUBSCRIBE", b"other"), _cmd(b"UNSUBSCRIBE"), _cmd(b"PSUBSCRIBE", b"c*"),
    _cmd(b"PUNSUBSCRIBE"), _cmd(b"SSUBSCRIBE", b"ch"), _cmd(b"SPUBLISH", b"ch", b"t"),
    _cmd(b"CLIENT", b"REPLY", b"SKIP"), _cmd(b"CLIENT", b"REPLY", b"OFF"), _cmd(b"CLIENT", b"REPLY", b"ON"),
    _cmd(b"HELLO", b"3"), _cmd(b"HELLO", b"2"), _cmd(b"PING"), b"PUBLISH ch inline\r\n",
])
_READ = st.tuples(st.just("read"), st.integers(0, _CLIENTS - 1),
                  st.one_of(st.lists(_COMMANDS, min_size=1, max_size=8),
                            st.lists(st.sampled_from([_cmd(b"PUBLISH", b"ch", b"p"), _cmd(b"PUBLISH", b"ch", b"pp")]),
                                     min_size=1, max_size=12)))
_DRAIN = st.tuples(st.just("drain"), st.integers(0, _CLIENTS - 1))


# Clients 1 and 2 start as subscribers of "ch" (2 of "other" too), so that most programs
# publish to somebody; the program can change that at once.
_SET_UP = [("read", 1, [_cmd(b"SUBSCRIBE", b"ch")]), ("read", 2, [_cmd(b"SUBSCRIBE", b"ch", b"other")])]


@settings(max_examples=300, deadline=None)
@given(program=st.lists(st.one_of(_READ, _READ, _DRAIN), max_size=14),
       hard_limit=st.sampled_from([0, 120, 300]))
def test_batches_give_the_same_replies_and_deliveries_as_one_by_one(program, hard_limit) -> None:
    program = _SET_UP + program
    batched = trio.run(_in_trio, _replay, program, True, _CLIENTS, hard_limit)
    reference = trio.run(_in_trio, _replay, program, False, _CLIENTS, hard_limit)
    assert batched == reference
