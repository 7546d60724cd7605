"""Differential testing against redis-server: the same bytes to both servers, the same bytes back.

A *case* is a short script of steps, each one command sent by one of the case's connections
(``A``, ``B``, ...). Every step is sent to a real ``redis-server`` and to dualmq's push mode,
and what each connection received is compared byte for byte. A case runs once per RESP
version it names: for RESP3 every connection first sends ``HELLO 3``.

How a step's output is collected without guessing how many frames to expect: after the
command, each connection that can answer — the sender first, then the others, one after the
other — sends ``PING sync-<n>`` and is read until that token comes back (its reply ends ``$<len>\\r\\nsync-<n>\\r\\n`` in every shape: a bulk string,
or the ``["pong", token]`` array of a RESP2 subscriber). Whatever arrived before it — replies,
pushes published by another connection, nothing at all — is the step's output.

Step syntax (one string per step)::

    "A: SUBSCRIBE a b"        A sends it; then every connection is synchronised and compared
    "A~ CLIENT REPLY OFF"     A sends it and is *not* synchronised until its next ':' step
                              (its PING would be swallowed, or held by CLIENT PAUSE)
    "A: QUIT !closes"         A's connection must close: A is read until EOF
    ("A", b"raw bytes")       A sends these bytes as they are (inline commands, bad RESP);
                              ("A~", b"...") without synchronising A, ("A!", b"...") closes

Fields that legitimately differ between two servers (connection ids, ports, times) are
rewritten by a case's ``normalize`` function before comparing, never silently ignored.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from bench._common import BenchError, start_redis, stop_process
from tests.support import broker_process, require_binary

__all__ = ["Case", "Servers", "hello_id", "run_case", "servers_for", "sorted_array", "sorted_map_pairs",
           "sorted_subcommands", "unordered_unsubscribe_all"]

TIMEOUT = 5.0
# A connection that cannot be synchronised (its replies are off) is read until it stays quiet
# this long; only at the end of a case, so the cost is paid rarely.
QUIET_SECONDS = 0.3
# What every test server starts with, on both sides: nothing persisted, as push mode keeps
# nothing, and maxmemory-clients 0 as in Redis (dualmq's default is a cap).
REDIS_ARGS = ["--save", "", "--appendonly", "no"]
DUALMQ_CONFIG = "[resp]\nmaxmemory_clients = 0\n"
# CONFIG SET after every case, so a case that changes settings cannot leak into the next.
BASELINE_CONFIG = [
    "timeout", "0", "maxclients", "10000",
    "client-output-buffer-limit", "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
]

Normalize = Callable[[bytes], bytes]


def _identity(data: bytes) -> bytes:
    return data


@attrs.frozen
class Case:
    """A named script of steps, run against both servers in each of ``protocols``."""

    name: str
    steps: tuple[str | tuple[str, bytes], ...]
    protocols: tuple[int, ...] = (2, 3)
    normalize: Normalize = _identity


@attrs.frozen
class Servers:
    """Where the two servers listen."""

    redis: tuple[str, int]
    dualmq: tuple[str, int]


@contextlib.contextmanager
def servers_for(workdir: Path, dualmq_config: str = DUALMQ_CONFIG,
                redis_args: tuple[str, ...] = ()) -> Iterator[Servers]:
    """A redis-server and a ``dualmq serve`` side by side, both stopped on exit.

    ``redis_args`` are added to ``REDIS_ARGS`` (``dualmq_config`` says the same in TOML).
    """
    require_binary("redis-server", "redis-server")
    (workdir / "redis").mkdir()
    try:
        redis, port = start_redis(workdir / "redis", [*REDIS_ARGS, *redis_args])
    except BenchError as exc:
        pytest.fail(str(exc))
    config = workdir / "dualmq.toml"
    config.write_text(dualmq_config)
    try:
        with broker_process(workdir, "--config", str(config)) as broker:
            yield Servers(redis=("127.0.0.1", port), dualmq=broker.resp)
    finally:
        stop_process(redis)


# --- one connection to one server ------------------------------------------------------------


def encode_command(words: list[str]) -> bytes:
    """A RESP multibulk request, as every client library sends one."""
    out = [b"*%d\r\n" % len(words)]
    for word in words:
        data = word.encode("utf-8", "surrogateescape")
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


class _Conn:
    """A blocking socket with a deadline on every read."""

    def __init__(self, address: tuple[str, int], source: str | None = None) -> None:
        self.sock = socket.create_connection(address, timeout=TIMEOUT,
                                             source_address=(source, 0) if source else None)
        self.buffer = b""
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until_suffix(self, suffix: bytes) -> bytes:
        deadline = time.monotonic() + TIMEOUT
        while not self.buffer.endswith(suffix):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {suffix!r} within {TIMEOUT}s; got {self.buffer!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before {suffix!r}; got {self.buffer!r}")
            self.buffer += chunk
        data, self.buffer = self.buffer, b""
        return data

    def read_until_closed(self) -> bytes:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                data, self.buffer = self.buffer, b""
                return data
            self.buffer += chunk

    def read_pending(self, quiet_seconds: float) -> bytes:
        """Whatever arrives until nothing more has come for ``quiet_seconds``."""
        self.sock.settimeout(quiet_seconds)
        try:
            self.read_until_closed()
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(TIMEOUT)
        data, self.buffer = self.buffer, b""
        return data

    def close(self) -> None:
        self.sock.close()


# --- running a case ----------------------------------------------------------------------------


def _parse_step(step: str | tuple[str, bytes]) -> tuple[str, bytes, bool, bool]:
    """-> (connection name, bytes to send, synchronise it afterwards, must close)."""
    if isinstance(step, tuple):
        name, raw = step
        return name[0], raw, not name.endswith("~"), name.endswith("!")
    name, mark, text = step[0], step[1], step[2:].strip()
    assert mark in ":~", f"bad step {step!r}"
    closes = text.endswith("!closes")
    if closes:
        text = text[: -len("!closes")].strip()
    return name, encode_command(shlex.split(text)), mark == ":", closes


def _connection_names(case: Case) -> list[str]:
    names: list[str] = []
    for step in case.steps:
        name = step[0][0]
        if name not in names:
            names.append(name)
    return names


def run_case(servers: Servers, case: Case, protocol: int) -> None:
    """Run ``case`` on both servers in RESP ``protocol``; fail at the first differing output."""
    names = _connection_names(case)
    conns = {
        side: {name: _Conn(address) for name in names}
        for side, address in (("redis", servers.redis), ("dualmq", servers.dualmq))
    }
    sync_counter = iter(range(1, 1_000_000))
    # Connections whose output is collected only at their next ':' step.
    unsynced: set[str] = set()
    try:
        if protocol == 3:
            for side in conns:
                for conn in conns[side].values():
                    conn.send(encode_command(["HELLO", "3"]))
            # HELLO's reply names the connection's id, which each server numbers itself.
            hello = attrs.evolve(case, normalize=lambda data: case.normalize(hello_id(data)))
            _compare_sync(hello, "HELLO 3", conns, names, sync_counter)
        for index, step in enumerate(case.steps):
            name, data, synchronise, closes = _parse_step(step)
            label = f"step {index} {step!r}"
            for side in conns:
                conns[side][name].send(data)
            if closes:
                outputs = {side: case.normalize(conns[side][name].read_until_closed()) for side in conns}
                assert outputs["dualmq"] == outputs["redis"], (
                    f"{case.name} RESP{protocol} {label}: connection {name} before closing\n"
                    f"  redis : {outputs['redis']!r}\n  dualmq: {outputs['dualmq']!r}"
                )
                names = [n for n in names if n != name]
                continue
            if synchronise:
                unsynced.discard(name)
            else:
                unsynced.add(name)
            # The sender first: once its PING is answered, its command has run (and queued
            # whatever it delivers to others) before any other connection's PING is sent.
            live = [n for n in names if n not in unsynced]
            live.sort(key=lambda n: n != name)
            _compare_sync(case, f"RESP{protocol} {label}", conns, live, sync_counter)
        # Whatever the unsynchronised connections still hold must match as well.
        for name in unsynced:
            outputs = {side: case.normalize(conns[side][name].read_pending(QUIET_SECONDS)) for side in conns}
            assert outputs["dualmq"] == outputs["redis"], (
                f"{case.name} RESP{protocol}: connection {name} at the end\n"
                f"  redis : {outputs['redis']!r}\n  dualmq: {outputs['dualmq']!r}"
            )
    finally:
        for side in conns:
            for conn in conns[side].values():
                conn.close()


def _compare_sync(case: Case, label: str, conns: dict[str, dict[str, _Conn]], names: list[str],
                  counter: Iterator[int]) -> None:
    for name in names:
        token = f"sync-{next(counter)}"
        suffix = b"$%d\r\n%b\r\n" % (len(token), token.encode())
        outputs = {}
        for side in conns:
            conns[side][name].send(encode_command(["PING", token]))
        for side in conns:
            try:
                output = conns[side][name].read_until_suffix(suffix)
            except (TimeoutError, AssertionError) as exc:
                raise AssertionError(f"{case.name} {label}: {side} connection {name} did not answer "
                                     f"PING {token}: {exc}; got {conns[side][name].buffer!r}") from None
            # The PING's own reply (a bulk string, or RESP2 subscribed context's
            # ["pong", token]) is kept as it came; only what precedes it is normalised.
            pong = b"*2\r\n$4\r\npong\r\n" + suffix
            sync_reply = pong if output.endswith(pong) else suffix
            outputs[side] = case.normalize(output[: -len(sync_reply)]) + sync_reply
        assert outputs["dualmq"] == outputs["redis"], (
            f"{case.name} {label}: connection {name}\n"
            f"  redis : {outputs['redis']!r}\n  dualmq: {outputs['dualmq']!r}"
        )


def reset_servers(servers: Servers) -> None:
    """Undo what a case may have changed, and wait until both have forgotten its subscribers.

    A closed connection's subscriptions disappear when the server notices the close, a moment
    after the case ended; the next case must not see them in PUBSUB CHANNELS.
    """
    for address in (servers.redis, servers.dualmq):
        conn = _Conn(address)
        try:
            conn.send(encode_command(["CLIENT", "UNPAUSE"]))
            conn.read_until_suffix(b"\r\n")
            conn.send(encode_command(["CONFIG", "SET", *BASELINE_CONFIG]))
            conn.read_until_suffix(b"\r\n")
            deadline = time.monotonic() + TIMEOUT
            probe = (encode_command(["PUBSUB", "CHANNELS"]) + encode_command(["PUBSUB", "SHARDCHANNELS"])
                     + encode_command(["PUBSUB", "NUMPAT"]))
            while True:
                conn.send(probe)
                if conn.read_until_suffix(b":0\r\n") == b"*0\r\n*0\r\n:0\r\n":
                    break
                assert time.monotonic() < deadline, f"{address}: subscriptions of a closed case remain"
                time.sleep(0.01)
        finally:
            conn.close()


# --- normalisers for fields that legitimately differ --------------------------------------------


def hello_id(data: bytes) -> bytes:
    """HELLO's ``id`` field and CLIENT ID's reply: each server numbers its connections itself."""
    return re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"$2\r\nid\r\n:<id>\r\n", data)


def sorted_map_pairs(data: bytes) -> bytes:
    """A flat RESP2 array or RESP3 map of bulk-string pairs, with its pairs sorted.

    Redis lists CONFIG GET's matches in the order of a hash table seeded at random when it
    starts (two runs of the same redis-server disagree), so only the set of pairs is defined.
    """
    match = re.fullmatch(rb"([*%])(\d+)\r\n(.*)", data, re.S)
    if match is None:
        return data
    items = re.findall(rb"\$\d+\r\n.*?\r\n", match.group(3), re.S)
    pairs = sorted(zip(items[::2], items[1::2]))
    return match.group(1) + match.group(2) + b"\r\n" + b"".join(a + b for a, b in pairs)


def sorted_array(data: bytes) -> bytes:
    """A RESP array of bulk strings with its elements sorted.

    PUBSUB CHANNELS / SHARDCHANNELS and COMMAND LIST list what they find in the order of a
    hash table seeded at random when Redis starts: only the set of names is defined.
    """
    match = re.fullmatch(rb"\*(\d+)\r\n(.*)", data, re.S)
    if match is None:
        return data
    items = re.findall(rb"\$\d+\r\n.*?\r\n", match.group(2), re.S)
    return b"*" + match.group(1) + b"\r\n" + b"".join(sorted(items))


_FRAME = re.compile(rb"([*>])3\r\n\$(\d+)\r\n([a-z]+)\r\n\$(\d+)\r\n(.*?)\r\n:(\d+)\r\n", re.S)


def unordered_unsubscribe_all(data: bytes) -> bytes:
    """(S|P)UNSUBSCRIBE with no argument: the names it left, sorted, with the counts in place.

    Redis leaves a client's channels in the order of the client's own hash table (seeded at
    random when it starts), counting down: "c 1, a 0" one day is "a 1, c 0" another. What is
    defined is which names are left and the counts falling to 0; dualmq leaves them in
    subscription order. Runs of consecutive confirmation frames of one kind get their names
    sorted; everything else is kept as it is.
    """
    out = b""
    position = 0
    frames = list(_FRAME.finditer(data))
    index = 0
    while index < len(frames):
        run = [frames[index]]
        while (index + len(run) < len(frames) and frames[index + len(run)].start() == run[-1].end()
               and frames[index + len(run)].group(3) == run[0].group(3)):
            run.append(frames[index + len(run)])
        out += data[position:run[0].start()]
        names = sorted((m.group(4), m.group(5)) for m in run)
        for m, (length, name) in zip(run, names):
            out += b"%b3\r\n$%b\r\n%b\r\n$%b\r\n%b\r\n:%b\r\n" % (
                m.group(1), m.group(2), m.group(3), length, name, m.group(6))
        position = run[-1].end()
        index += len(run)
    return out + data[position:]


# A RESP value as raw bytes: its header line (and body, for strings), and its elements.
_AGGREGATES = b"*~>%"


def _parse_raw(data: bytes, start: int) -> tuple[tuple[bytes, list], int]:
    line_end = data.index(b"\r\n", start) + 2
    header = data[start:line_end]
    kind, size = header[:1], header[1:-2]
    if kind in b"$=!" and size != b"-1":
        end = line_end + int(size) + 2
        return (data[start:end], []), end
    if kind in _AGGREGATES and size != b"-1":
        count = int(size) * (2 if kind == b"%" else 1)
        children, position = [], line_end
        for _ in range(count):
            child, position = _parse_raw(data, position)
            children.append(child)
        return (header, children), position
    return (header, []), line_end


def _raw(node: tuple[bytes, list]) -> bytes:
    return node[0] + b"".join(_raw(child) for child in node[1])


def _sorted_subcommands(node: tuple[bytes, list]) -> tuple[bytes, list]:
    header, children = node
    children = [_sorted_subcommands(child) for child in children]
    if len(children) == 10 and children[0][0][:1] == b"$" and children[1][0][:1] == b":":
        # A COMMAND INFO entry: its 10th element lists the subcommands' entries.
        inner_header, inner = children[9]
        children[9] = (inner_header, sorted(inner, key=_raw))
    for index in range(0, len(children) - 1, 2):
        if children[index][0] == b"$11\r\nsubcommands\r\n":
            # COMMAND DOCS: "subcommands" -> name, docs, name, docs ... (flat in RESP2).
            inner_header, inner = children[index + 1]
            pairs = sorted(zip(inner[::2], inner[1::2]), key=lambda pair: _raw(pair[0]))
            children[index + 1] = (inner_header, [item for pair in pairs for item in pair])
    return header, children


def sorted_subcommands(data: bytes) -> bytes:
    """COMMAND INFO / DOCS replies with each container's subcommands in name order.

    Redis keeps a container's subcommands in a hash table seeded at random when it starts, and
    lists them in that order (two runs of one redis-server disagree); ours come in table order.
    Everything else — every entry, every field — is compared as it came.
    """
    out, position = b"", 0
    while position < len(data):
        node, position = _parse_raw(data, position)
        out += _raw(_sorted_subcommands(node))
    return out
