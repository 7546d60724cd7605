"""The floor under push mode's latency: the least a Python pub/sub forwarder does, on one loop.

``bench/push_vs_redis.py --floor`` measures publish -> deliver latency against this server as
well as against redis-server and dualmq, in the same run. It does only what the latency probe
needs — SUBSCRIBE, PUBLISH, PING — with hiredis parsing the requests, one epoll set for every
socket, and a write straight to each subscriber: no output buffers, no limits, no ordering
promises, no error handling worth the name. Whatever dualmq adds on top of this figure is its
own cost; what this figure adds on top of redis-server is the price of Python (and of trio,
for ``--loop trio``), which no change to dualmq can remove.

Two loops, the same handling:

* ``blocking``: ``epoll.poll()`` blocks the process, as redis-server's own loop does;
* ``trio``: ``await trio.lowlevel.wait_readable(epoll_fd)``, then ``epoll.poll(0)`` — push
  mode's event loop (``modes.push.event_loop``) waits exactly this way.

Run::

    .venv/bin/python bench/push_floor.py --port 6400 --loop trio     # serves until killed
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import hiredis
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HOST, BenchError, _wait_for_ping, free_port, stop_process  # noqa: E402

LOOPS = ("blocking", "trio")
_READ = 64 * 1024


class Forwarder:
    """Every socket in one level-triggered epoll set; ``handle`` serves what ``poll`` reported."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.epoll = select.epoll()
        self.epoll.register(listener.fileno(), select.EPOLLIN)
        self.sockets: dict[int, tuple[socket.socket, hiredis.Reader]] = {}
        self.channels: dict[bytes, list[int]] = {}

    def handle(self, events: list[tuple[int, int]]) -> None:
        for fd, _ in events:
            if fd == self.listener.fileno():
                sock, _ = self.listener.accept()
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.sockets[sock.fileno()] = (sock, hiredis.Reader())
                self.epoll.register(sock.fileno(), select.EPOLLIN)
                continue
            sock, reader = self.sockets[fd]
            try:
                data = os.read(fd, _READ)
            except OSError:
                data = b""
            if not data:
                self._close(fd, sock)
                continue
            reader.feed(data)
            replies = []
            while (command := reader.gets()) is not False:
                name = command[0].upper()
                if name == b"PUBLISH":
                    channel, payload = command[1], command[2]
                    receivers = self.channels.get(channel, ())
                    frame = b"*3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
                        len(channel), channel, len(payload), payload)
                    for receiver in receivers:
                        os.write(receiver, frame)
                    replies.append(b":%d\r\n" % len(receivers))
                elif name == b"SUBSCRIBE":
                    for channel in command[1:]:
                        self.channels.setdefault(channel, []).append(fd)
                        replies.append(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%b\r\n:1\r\n" % (len(channel), channel))
                elif name == b"PING":
                    replies.append(b"+PONG\r\n")
                else:
                    replies.append(b"-ERR only SUBSCRIBE, PUBLISH and PING here\r\n")
            if replies:
                os.write(fd, b"".join(replies))

    def _close(self, fd: int, sock: socket.socket) -> None:
        self.epoll.unregister(fd)
        del self.sockets[fd]
        for receivers in self.channels.values():
            if fd in receivers:
                receivers.remove(fd)
        sock.close()

    def run_blocking(self) -> None:
        while True:
            self.handle(self.epoll.poll())

    async def run_trio(self) -> None:
        epoll_fd = self.epoll.fileno()
        while True:
            await trio.lowlevel.wait_readable(epoll_fd)
            self.handle(self.epoll.poll(0))


def start_floor(loop: str, timeout: float = 10.0) -> tuple[subprocess.Popen, int]:
    """Start this forwarder in a process of its own on a free port; wait until it answers PING.

    Raises:
        BenchError: it did not answer within ``timeout``.
    """
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--port", str(port), "--loop", loop],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    if not _wait_for_ping(port, proc, time.monotonic() + timeout):
        stop_process(proc)
        raise BenchError(f"bench/push_floor.py --loop {loop} did not start")
    return proc, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=LOOPS, default="trio")
    args = parser.parse_args(argv)
    listener = socket.create_server((HOST, args.port))
    listener.setblocking(False)
    forwarder = Forwarder(listener)
    try:
        if args.loop == "blocking":
            forwarder.run_blocking()
        else:
            trio.run(forwarder.run_trio)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
