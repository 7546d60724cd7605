"""An in-process push-mode broker and a tiny RESP client over real TCP, for listener tests.

``push_broker`` runs ``serve_resp`` in the test's trio run on 127.0.0.1:0; ``RespClient``
reads with a deadline on every wait, so a broker that never answers fails the test instead of
hanging it. (The pull-mode equivalent is ``tests.modes.pull.raw.pull_broker``.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import trio

from broker.channels import PubSub
from broker.config import BrokerConfig, RespConfig
from broker.stats import ServerInfo
from modes.push.server import serve_resp

TIMEOUT = 5.0


@contextlib.asynccontextmanager
async def push_broker(**resp: object) -> AsyncIterator[tuple[str, int]]:
    """Serve push mode in-process until the block exits; yields its ``(host, port)``."""
    config = BrokerConfig(resp=RespConfig(listen="127.0.0.1:0", **resp))
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_resp, config.resp, PubSub(),
                                      ServerInfo(config=config, started_at_ms=0))
        host, _, port = address.rpartition(":")
        yield host, int(port)
        nursery.cancel_scope.cancel()


class RespClient:
    """Raw RESP over a trio TCP stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    @classmethod
    async def connect(cls, address: tuple[str, int], source: str = "127.0.0.1") -> RespClient:
        sock = trio.socket.socket()
        with trio.fail_after(TIMEOUT):
            await sock.bind((source, 0))
            await sock.connect(address)
        return cls(trio.SocketStream(sock))

    @property
    def local_port(self) -> int:
        return self.stream.socket.getsockname()[1]

    async def send(self, data: bytes) -> None:
        with trio.fail_after(TIMEOUT):
            await self.stream.send_all(data)

    async def _fill(self, count: int) -> None:
        with trio.fail_after(TIMEOUT):
            while len(self.buffer) < count:
                chunk = await self.stream.receive_some(65536)
                if not chunk:
                    raise EOFError(f"connection closed with {self.buffer!r} buffered")
                self.buffer += chunk

    async def expect(self, expected: bytes) -> None:
        await self._fill(len(expected))
        got, self.buffer = self.buffer[: len(expected)], self.buffer[len(expected):]
        assert got == expected

    async def read_until_closed(self) -> bytes:
        """Everything until EOF (or a reset: a peer closed with unread data resets)."""
        with trio.fail_after(TIMEOUT):
            while True:
                try:
                    chunk = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    chunk = b""
                if not chunk:
                    data, self.buffer = self.buffer, b""
                    return data
                self.buffer += chunk

    async def info(self) -> dict[str, str]:
        """``INFO`` as a dict of field -> value."""
        await self.send(b"INFO\r\n")
        await self._fill(1)
        while b"\r\n" not in self.buffer:
            await self._fill(len(self.buffer) + 1)
        header, _, self.buffer = self.buffer.partition(b"\r\n")
        size = int(header[1:])
        await self._fill(size + 2)
        text, self.buffer = self.buffer[:size].decode(), self.buffer[size + 2:]
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    async def aclose(self) -> None:
        await self.stream.aclose()
