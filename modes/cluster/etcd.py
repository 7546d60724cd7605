"""A small trio client for etcd v3, over etcd's JSON gateway (HTTP/1.1 + JSON, keys base64).

Only what a dualmq cluster needs (docs/cluster.md#the-etcd-client): ``range`` (one key or a
prefix), ``put``, ``txn`` (compare-and-set, the building block of registration and the
controller election), ``delete``, leases (``grant``, ``keepalive``, ``revoke``) and ``watch``
(a stream of changes under a prefix, from a revision on).

Why the gateway and httpx: etcd serves every v3 call as JSON over plain HTTP next to gRPC
(``/v3/kv/range`` and friends), so no gRPC stack and no generated code are needed. httpx is a
well-kept HTTP client that runs on trio (through anyio), with connection pooling, timeouts,
and streamed responses for ``/v3/watch``. It is the optional extra ``dualmq[cluster]``: a
single broker never imports this module.

The gateway's JSON is proto3's mapping: 64-bit integers are strings, bytes are base64, and a
field holding its default value (0, false, "", an empty list, the enum's first value) is left
out — so ``succeeded`` is absent when a txn failed and a watch event's ``type`` is absent for
a PUT. Every reply is checked for the shape we read, and anything else raises
``EtcdProtocolError`` naming the call: bad input from the server is an error, never a guess.

Errors:

* ``EtcdUnavailable`` - no endpoint answered (refused, timed out, reset); retriable;
* ``EtcdRequestFailed`` - etcd answered with an error (``code``, ``message``), e.g. an
  unknown lease;
* ``EtcdProtocolError`` - the answer is not the JSON we expect;
* ``LeaseExpired`` - a keepalive found the lease gone (its TTL passed, or it was revoked).

Every request has a deadline (``request_timeout``); a watch stream has a read deadline too
and the caller re-opens it from the last revision it saw (``Watch.revision``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import trio

from broker.cluster.model import CoordinationError
from modes.common.exception_groups import leaves

__all__ = [
    "Compare", "EtcdClient", "EtcdError", "EtcdProtocolError", "EtcdRequestFailed", "EtcdUnavailable",
    "KeyValue", "LeaseExpired", "TxnResult", "WatchEvent", "prefix_end",
]

DEFAULT_REQUEST_TIMEOUT = 5.0
# How long a watch may stay silent before we assume the stream is dead and re-open it (etcd
# sends nothing while nothing changes; a re-open from the last revision loses nothing).
DEFAULT_WATCH_IDLE_TIMEOUT = 30.0
# A watch message is one JSON line; a line longer than this is refused, not buffered.
MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024
# Chunks of a watch stream read ahead of its consumer: a few, so a slow consumer holds etcd
# back through TCP instead of buffering without bound.
WATCH_CHUNKS_BUFFERED = 16


class EtcdError(CoordinationError):
    """Something went wrong talking to etcd."""


class EtcdUnavailable(EtcdError):
    """No etcd endpoint could be reached (connection refused, timed out, or reset)."""


class EtcdRequestFailed(EtcdError):
    """etcd answered a request with an error.

    Attributes:
        code: the gRPC status code etcd gave (5 = not found, 9 = failed precondition, ...).
        status: the HTTP status of the answer.
    """

    def __init__(self, message: str, *, code: int, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class EtcdProtocolError(EtcdError):
    """etcd's answer was not the JSON shape the call expects."""


class LeaseExpired(EtcdError):
    """The lease is gone: its TTL passed without a keepalive, or it was revoked."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise EtcdProtocolError(f"{what}: expected base64 text, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise EtcdProtocolError(f"{what}: not valid base64") from None


def _int(value: Any, what: str) -> int:
    """A proto3 int64 (a decimal string, or a JSON number); absent means 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise EtcdProtocolError(f"{what}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise EtcdProtocolError(f"{what}: expected an integer, got {value!r}") from None


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise EtcdProtocolError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EtcdProtocolError(f"{what}: expected a JSON list, got {type(value).__name__}")
    return value


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` that makes a range or watch cover every key starting with ``prefix``:
    the prefix with its last byte below 0xff incremented (etcd's own rule)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # every key


@attrs.frozen
class KeyValue:
    """One key as etcd stores it."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def from_json(cls, raw: Any, what: str) -> KeyValue:
        raw = _object(raw, what)
        return cls(key=_unb64(raw.get("key"), f"{what}.key"),
                   value=_unb64(raw.get("value", ""), f"{what}.value"),
                   create_revision=_int(raw.get("create_revision"), f"{what}.create_revision"),
                   mod_revision=_int(raw.get("mod_revision"), f"{what}.mod_revision"),
                   version=_int(raw.get("version"), f"{what}.version"),
                   lease=_int(raw.get("lease"), f"{what}.lease"))


@attrs.frozen
class Compare:
    """One condition of a txn: ``target`` of ``key`` compared (``result``) with a value.

    Use the named constructors: ``Compare.absent(key)``, ``Compare.value_is(key, value)``.
    """

    key: bytes
    target: str          # "CREATE", "VALUE", "VERSION", "MOD" or "LEASE"
    operand: Any         # the int or bytes compared against
    result: str = "EQUAL"

    @classmethod
    def absent(cls, key: bytes) -> Compare:
        """True when ``key`` does not exist (its create revision is 0)."""
        return cls(key, "CREATE", 0)

    @classmethod
    def value_is(cls, key: bytes, value: bytes) -> Compare:
        return cls(key, "VALUE", value)

    def to_json(self) -> dict:
        field = {"CREATE": "create_revision", "VALUE": "value", "VERSION": "version",
                 "MOD": "mod_revision", "LEASE": "lease"}[self.target]
        operand = _b64(self.operand) if self.target == "VALUE" else str(self.operand)
        return {"key": _b64(self.key), "target": self.target, "result": self.result, field: operand}


def put_op(key: bytes, value: bytes, *, lease: int = 0) -> dict:
    """A txn operation: put ``key`` = ``value`` (attached to ``lease`` when not 0)."""
    request = {"key": _b64(key), "value": _b64(value)}
    if lease:
        request["lease"] = str(lease)
    return {"request_put": request}


def get_op(key: bytes) -> dict:
    """A txn operation: read ``key``."""
    return {"request_range": {"key": _b64(key)}}


def delete_op(key: bytes) -> dict:
    """A txn operation: delete ``key``."""
    return {"request_delete_range": {"key": _b64(key)}}


@attrs.frozen
class TxnResult:
    """What a txn did: whether the compares held, the revision after it, and what each
    ``request_range`` of the branch taken read (in order; other operations read nothing)."""

    succeeded: bool
    revision: int
    ranges: tuple[tuple[KeyValue, ...], ...]


@attrs.frozen
class WatchEvent:
    """One change: a put (``kv`` the new value) or a delete (``kv.value`` empty)."""

    deleted: bool
    kv: KeyValue


def _header_revision(reply: dict, what: str) -> int:
    return _int(_object(reply.get("header", {}), f"{what}.header").get("revision"), f"{what}.header.revision")


class EtcdClient:
    """Calls to one etcd cluster, through the first of its endpoints that answers.

    Args:
        endpoints: ``"HOST:PORT"`` of etcd client listeners (http).
        request_timeout: the deadline of each call, connection included.

    Use ``async with EtcdClient([...]) as etcd:`` (or ``aclose()``): it holds pooled connections.
    """

    def __init__(self, endpoints: Sequence[str], *, request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 watch_idle_timeout: float = DEFAULT_WATCH_IDLE_TIMEOUT) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self.endpoints = list(endpoints)
        self.request_timeout = request_timeout
        self.watch_idle_timeout = watch_idle_timeout
        # trust_env=False: etcd is reached directly; proxy variables of the environment are
        # not for it.
        self._http = httpx.AsyncClient(timeout=request_timeout, trust_env=False)
        self._preferred = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> EtcdClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- one request ----------------------------------------------------------------------

    def _order(self) -> list[int]:
        count = len(self.endpoints)
        return [(self._preferred + i) % count for i in range(count)]

    async def call(self, path: str, body: dict) -> dict:
        """POST ``body`` to ``path`` (``/v3/kv/range``...) on the first endpoint that answers.

        Returns:
            The reply, a JSON object.

        Raises:
            EtcdUnavailable: no endpoint answered within the deadline.
            EtcdRequestFailed: etcd answered with an error.
            EtcdProtocolError: the answer is not a JSON object.
        """
        failures = []
        for index in self._order():
            endpoint = self.endpoints[index]
            try:
                response = await self._http.post(f"http://{endpoint}{path}", json=body)
            except httpx.TransportError as exc:  # refused, reset, timed out
                failures.append(f"{endpoint}: {type(exc).__name__}: {exc or 'no detail'}")
                continue
            self._preferred = index
            return _reply_json(response, path)
        raise EtcdUnavailable(f"etcd unreachable for {path} ({'; '.join(failures)})")

    # --- keys -----------------------------------------------------------------------------

    async def range(self, key: bytes, *, prefix: bool = False) -> tuple[list[KeyValue], int]:
        """Read ``key`` (or every key under the prefix ``key``).

        Returns:
            ``(key_values, revision)``: sorted by key; the store's revision at the read.
        """
        body = {"key": _b64(key)}
        if prefix:
            body["range_end"] = _b64(prefix_end(key))
        reply = await self.call("/v3/kv/range", body)
        kvs = [KeyValue.from_json(kv, f"range.kvs[{i}]") for i, kv in enumerate(_list(reply.get("kvs"), "range.kvs"))]
        return kvs, _header_revision(reply, "range")

    async def get(self, key: bytes) -> KeyValue | None:
        """The key's current value, or None."""
        kvs, _ = await self.range(key)
        return kvs[0] if kvs else None

    async def put(self, key: bytes, value: bytes, *, lease: int = 0) -> int:
        """Set ``key`` = ``value``; returns the revision it was written at."""
        reply = await self.call("/v3/kv/put", put_op(key, value, lease=lease)["request_put"])
        return _header_revision(reply, "put")

    async def delete(self, key: bytes, *, prefix: bool = False) -> int:
        """Delete ``key`` (or every key under the prefix); returns how many were deleted."""
        body = {"key": _b64(key)}
        if prefix:
            body["range_end"] = _b64(prefix_end(key))
        reply = await self.call("/v3/kv/deleterange", body)
        return _int(reply.get("deleted"), "deleterange.deleted")

    async def txn(self, compare: Sequence[Compare], success: Sequence[dict],
                  failure: Sequence[dict] = ()) -> TxnResult:
        """If every ``compare`` holds, run ``success`` (``put_op``/``get_op``/``delete_op``),
        else ``failure`` - atomically, in one revision."""
        reply = await self.call("/v3/kv/txn", {"compare": [c.to_json() for c in compare],
                                               "success": list(success), "failure": list(failure)})
        succeeded = reply.get("succeeded", False)
        if not isinstance(succeeded, bool):
            raise EtcdProtocolError(f"txn.succeeded: expected true or false, got {succeeded!r}")
        ranges = []
        for i, op in enumerate(_list(reply.get("responses"), "txn.responses")):
            op = _object(op, f"txn.responses[{i}]")
            if "response_range" in op:
                found = _object(op["response_range"], f"txn.responses[{i}].response_range")
                ranges.append(tuple(KeyValue.from_json(kv, f"txn.responses[{i}].kvs")
                                    for kv in _list(found.get("kvs"), f"txn.responses[{i}].kvs")))
        return TxnResult(succeeded=succeeded, revision=_header_revision(reply, "txn"), ranges=tuple(ranges))

    # --- leases ---------------------------------------------------------------------------

    async def grant(self, ttl_seconds: int) -> int:
        """A new lease living ``ttl_seconds`` unless kept alive; returns its id."""
        reply = await self.call("/v3/lease/grant", {"TTL": str(ttl_seconds)})
        if reply.get("error"):
            raise EtcdRequestFailed(f"lease grant refused: {reply['error']}", code=0, status=200)
        lease = _int(reply.get("ID"), "lease grant.ID")
        if lease == 0:
            raise EtcdProtocolError("lease grant: the answer has no lease ID")
        return lease

    async def keepalive(self, lease: int) -> int:
        """Renew ``lease`` once; returns the TTL it has again (seconds).

        Raises:
            LeaseExpired: the lease no longer exists.
        """
        reply = await self.call("/v3/lease/keepalive", {"ID": str(lease)})
        result = _object(reply.get("result"), "lease keepalive.result")
        ttl = _int(result.get("TTL"), "lease keepalive.TTL")
        if ttl <= 0:  # etcd answers a keepalive of an unknown lease with no TTL
            raise LeaseExpired(f"lease {lease:x} has expired (or was revoked)")
        return ttl

    async def revoke(self, lease: int) -> None:
        """Revoke ``lease`` now: every key attached to it is deleted.

        Raises:
            LeaseExpired: the lease no longer exists.
        """
        try:
            await self.call("/v3/lease/revoke", {"ID": str(lease)})
        except EtcdRequestFailed as exc:
            if exc.code == GRPC_NOT_FOUND:
                raise LeaseExpired(f"lease {lease:x} has expired (or was revoked)") from None
            raise

    # --- watch ----------------------------------------------------------------------------

    @asynccontextmanager
    async def watch(self, prefix: bytes, *, start_revision: int) -> AsyncIterator[AsyncIterator[list[WatchEvent]]]:
        """Watch every key under ``prefix``, from ``start_revision`` on.

        ``async with etcd.watch(b"/dualmq/", start_revision=r + 1) as changes:`` then
        ``async for events in changes:`` - each item is the list of events of one revision
        batch, in order. The iteration ends (cleanly) when the stream goes quiet for longer
        than ``watch_idle_timeout``; re-open it from the last revision seen.

        Raises:
            EtcdUnavailable: etcd could not be reached (or the stream broke).
            EtcdRequestFailed: etcd refused or cancelled the watch (a compacted revision).
            EtcdProtocolError: a message that is not the JSON we expect.
        """
        body = {"create_request": {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)),
                                   "start_revision": str(start_revision)}}
        timeout = httpx.Timeout(self.request_timeout, read=self.watch_idle_timeout)
        failures = []
        for index in self._order():
            endpoint = self.endpoints[index]
            request = self._http.build_request("POST", f"http://{endpoint}/v3/watch", json=body, timeout=timeout)
            try:
                response = await self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                failures.append(f"{endpoint}: {type(exc).__name__}: {exc or 'no detail'}")
                continue
            self._preferred = index
            try:
                if response.status_code != 200:
                    await response.aread()
                    _reply_json(response, "/v3/watch")
                try:
                    async with trio.open_nursery() as nursery:
                        send, receive = trio.open_memory_channel[bytes | EtcdError](WATCH_CHUNKS_BUFFERED)
                        nursery.start_soon(_pump, response, send)
                        messages = _watch_messages(receive)
                        try:
                            yield messages
                        finally:
                            await messages.aclose()
                            nursery.cancel_scope.cancel()
                except BaseExceptionGroup as group:
                    # The pump never raises: what the group holds is the caller's own error
                    # (or ours, from a message), which it should get as it was raised.
                    raise _only_error(group) from None
            finally:
                await response.aclose()
            return
        raise EtcdUnavailable(f"etcd unreachable for /v3/watch ({'; '.join(failures)})")


GRPC_NOT_FOUND = 5


def _reply_json(response: httpx.Response, path: str) -> dict:
    """The JSON object of an answer, or the error it carries, as an exception."""
    try:
        reply = json.loads(response.content)
    except ValueError:
        raise EtcdProtocolError(f"etcd answered {path} with HTTP {response.status_code} and a body that is "
                                f"not JSON: {response.content[:80]!r}") from None
    if not isinstance(reply, dict):
        raise EtcdProtocolError(f"etcd answered {path} with JSON that is not an object: {reply!r:.80}")
    if response.status_code != 200 or "code" in reply and "error" in reply:
        message = reply.get("message") or reply.get("error") or f"HTTP {response.status_code}"
        raise EtcdRequestFailed(f"etcd refused {path}: {message}", code=_int(reply.get("code"), "error.code"),
                                status=response.status_code)
    return reply


def _only_error(group: BaseExceptionGroup) -> BaseException:
    """The one exception a nursery wrapped in ``group`` (the group itself if there are several)."""
    found = leaves(group)
    return found[0] if len(found) == 1 else group


async def _pump(response: httpx.Response, send: trio.MemorySendChannel[bytes | EtcdError]) -> None:
    """Copy the watch stream's bytes into ``send``; a broken stream is sent as an error, a quiet
    one (the read deadline) ends it.

    Why a task: httpx's byte iterators are async generators nested several deep; a consumer
    that stops early (a bad message, ``break``) would abandon them half-way. Ended by
    cancellation instead, they all unwind cleanly.
    """
    async with send:
        try:
            async for chunk in response.aiter_bytes():
                await send.send(chunk)
        except httpx.ReadTimeout:
            return  # quiet for watch_idle_timeout: the caller re-opens from its last revision
        except httpx.TransportError as exc:
            await send.send(EtcdUnavailable(f"the etcd watch stream broke: {type(exc).__name__}: "
                                            f"{exc or 'no detail'}"))


async def _watch_messages(receive: trio.MemoryReceiveChannel[bytes | EtcdError]) -> AsyncIterator[list[WatchEvent]]:
    """The watch stream's messages, one JSON object per line, as lists of events."""
    buffer = b""
    async for chunk in receive:
        if isinstance(chunk, EtcdError):
            raise chunk
        buffer += chunk
        if len(buffer) > MAX_WATCH_LINE_BYTES and b"\n" not in buffer:
            raise EtcdProtocolError(f"a watch message longer than {MAX_WATCH_LINE_BYTES} bytes")
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                events = _watch_events(line)
                if events is not None:
                    yield events
    if buffer.strip():
        events = _watch_events(buffer)
        if events is not None:
            yield events


def _watch_events(line: bytes) -> list[WatchEvent] | None:
    """One watch message: its events, or None for a message without any (created, progress)."""
    try:
        message = json.loads(line)
    except ValueError:
        raise EtcdProtocolError(f"a watch message that is not JSON: {line[:80]!r}") from None
    message = _object(message, "watch message")
    if "error" in message:
        error = message["error"]
        detail = error.get("message") if isinstance(error, dict) else error
        code = _int(error.get("grpc_code") or error.get("code"), "watch.error.code") if isinstance(error, dict) else 0
        raise EtcdRequestFailed(f"etcd ended the watch: {detail}", code=code, status=200)
    result = _object(message.get("result"), "watch.result")
    if result.get("canceled"):
        raise EtcdRequestFailed(f"etcd cancelled the watch: {result.get('cancel_reason') or 'no reason given'}"
                                f" (compact revision {result.get('compact_revision', 0)})", code=0, status=200)
    events = []
    for i, raw in enumerate(_list(result.get("events"), "watch.events")):
        raw = _object(raw, f"watch.events[{i}]")
        kind = raw.get("type", "PUT")
        if kind not in ("PUT", "DELETE"):
            raise EtcdProtocolError(f"watch.events[{i}].type: unknown event type {kind!r}")
        events.append(WatchEvent(deleted=kind == "DELETE", kv=KeyValue.from_json(raw.get("kv"), f"watch.events[{i}].kv")))
    return events or None
