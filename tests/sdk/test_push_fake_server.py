"""The push SDK against scripted fake servers: behaviours real servers will not show on demand.

* an old server without HELLO (Redis < 6): the SDK must fall back to RESP2;
* a server that goes silent while we are subscribed (a vanished peer, no FIN): the health
  check PING must notice, so an ``async for`` never hangs forever.

The fakes decode requests with ``wire.resp.RequestParser`` and answer with ``wire.resp``
encoders, so the bytes are the ones Redis would send.
"""

from __future__ import annotations

import functools

import pytest
import trio

from dualmq.errors import ConnectionLost
from dualmq.push import Message, Publisher, subscribe
from wire.resp import RequestParser, encoder
from wire.resp.pubsub import message_frame, subscription_frame

TEST_TIMEOUT = 10.0


async def _old_redis(stream: trio.SocketStream, *, silent_after_subscribe: bool = False) -> None:
    """RESP2 only: HELLO is an unknown command; SUBSCRIBE confirms and sends one message."""
    parser = RequestParser()
    async with stream:
        while data := await stream.receive_some(4096):
            parser.feed(data)
            for cmd in parser.commands():
                name = cmd[0].upper()
                if name == b"HELLO":
                    await stream.send_all(encoder.error("ERR unknown command 'HELLO', with args beginning with: '3' "))
                elif name == b"PUBLISH":
                    await stream.send_all(encoder.integer(0))
                elif name == b"SUBSCRIBE":
                    frames = [subscription_frame(b"subscribe", ch, i + 1, 2) for i, ch in enumerate(cmd[1:])]
                    frames.append(message_frame(cmd[1], b"welcome", 2))
                    await stream.send_all(b"".join(frames))
                    if silent_after_subscribe:
                        await trio.sleep_forever()
                else:
                    await stream.send_all(encoder.error(f"ERR unknown command '{cmd[0].decode()}'"))


async def _serve(nursery: trio.Nursery, handler) -> tuple[str, int]:
    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[:2]


async def test_falls_back_to_resp2_when_hello_is_unknown() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            address = await _serve(nursery, _old_redis)
            async with Publisher(address, protocol=3) as pub:
                assert pub.protocol == 2
                assert await pub.publish("a", "b") == 0
            async with subscribe(address, "a", protocol=3) as sub:
                assert sub.protocol == 2
                assert await sub.receive() == Message(b"a", b"welcome")
            nursery.cancel_scope.cancel()


async def test_health_check_notices_a_silent_server() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            address = await _serve(nursery, functools.partial(_old_redis, silent_after_subscribe=True))
            async with subscribe(address, "a", health_check_interval=0.2) as sub:
                assert await sub.receive() == Message(b"a", b"welcome")
                started = trio.current_time()
                with pytest.raises(ConnectionLost, match="no answer to PING"):
                    await sub.receive()
                assert trio.current_time() - started < 2
            nursery.cancel_scope.cancel()
