"""Microbenchmark: what push mode costs per command and per event-loop wake-up, in µs.

Where ``push_vs_redis.py`` measures the whole broker from the outside, this script takes the
pieces apart, in one process, so that the remaining time can be attributed:

1. **run_batch** — parsing and running one read's pipelined PUBLISHes (``PushServer.execute``,
   no sockets): µs per command, for pipelines of 1, 16 and 64 commands and 0, 1 and 10
   subscribers on the channel.
2. **one pass of the event loop** — ``EpollEventLoop.serve_ready`` over C clients that each
   have one pipeline of P PUBLISHes waiting on a real loopback TCP socket: read every client,
   run its batch, write every client (and subscriber) once. µs per pass, split into the
   batches (``execute``), the writes (``flush_dirty``) and the rest (reads, the loop's own
   bookkeeping), each also per client.
   And one batch taken apart: µs per command of parsing, dispatch's column check, the
   fan-out and the rest.
3. **a trio wake-up** — ``trio.lowlevel.wait_readable`` on a descriptor that is already
   readable: what the loop pays to let the other tasks run once per pass.

Each figure is the median of several repetitions. The socket figures include the kernel's
work for loopback TCP (a write also delivers the bytes to the peer's socket).

Run::

    .venv/bin/python bench/push_loop_micro.py            # ~20 s
    .venv/bin/python bench/push_loop_micro.py --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import hiredis
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median  # noqa: E402

from broker.channels import PubSub  # noqa: E402
from broker.config import BrokerConfig, RespConfig  # noqa: E402
from broker.stats import ServerInfo  # noqa: E402
from modes.push.commands.pubsub import make_frame  # noqa: E402
from push_floor import Forwarder  # noqa: E402
from modes.common.listener import Connection, ConnectionTable  # noqa: E402
from modes.push.client import Client  # noqa: E402
from modes.push.event_loop import EpollEventLoop  # noqa: E402
from modes.push.server import PushServer, connection_limits  # noqa: E402
from wire.resp.requests import RequestParser  # noqa: E402

PUBLISH = b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$7\r\npayload\r\n"
SUBSCRIBE = b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n"


class _NoDriver:
    """Stands in for a driver where nothing may be refused (run_batch alone)."""

    name = "none"

    def write_refused(self, client: Client) -> None:
        raise AssertionError("no socket here")

    def flush_soon(self, client: Client) -> None:
        raise AssertionError("no output outside a batch here")


class TimedServer(PushServer):
    """A push server that adds up the time its batches and its writes take."""

    executing_ns: int = 0
    flushing_ns: int = 0

    def execute(self, client: Client, data: bytes, now: int) -> bool:
        start = time.perf_counter_ns()
        try:
            return super().execute(client, data, now)
        finally:
            self.executing_ns += time.perf_counter_ns() - start

    def flush_dirty(self) -> None:
        start = time.perf_counter_ns()
        super().flush_dirty()
        self.flushing_ns += time.perf_counter_ns() - start


def make_server() -> TimedServer:
    config = BrokerConfig(resp=RespConfig(listen="127.0.0.1:0", pubsub_hard_limit=0, pubsub_soft_limit=0))
    server = TimedServer(config=config.resp, pubsub=PubSub(), info=ServerInfo(config=config, started_at_ms=0))
    server.connections = ConnectionTable(mode="push", limits=connection_limits(config.resp), handler=None)
    server.driver = _NoDriver()
    return server


def make_client(server: PushServer, conn_id: int, fd: int = -1) -> Client:
    """A client as ``serve_connection`` builds one, without a trio stream behind it."""
    conn = Connection(id=conn_id, stream=None, peer_address=("127.0.0.1", conn_id), local_address=("127.0.0.1", 0),
                      peer=f"127.0.0.1:{conn_id}", local="127.0.0.1:0", opened_ms=0)
    client = server.new_client(conn, fd)
    server.clients[conn_id] = client
    return client


def subscribe(server: PushServer, client: Client) -> None:
    server.in_batch = True
    server.execute(client, SUBSCRIBE, 0)
    server.in_batch = False
    server.dirty.clear()
    client.outbox.take_bytes()


def publisher_and_subscribers(subscribers: int, prepare: Callable[[PushServer, Client], None] | None = None
                              ) -> tuple[TimedServer, Client, list[Client]]:
    """A server with one publishing client and ``subscribers`` clients subscribed to "ch".

    ``prepare``, if given, is called with the server and the publisher first (to make the
    publisher another ACL user, say: ``push_acl_cost.py``).
    """
    server = make_server()
    publisher = make_client(server, 1)
    if prepare is not None:
        prepare(server, publisher)
    subs = [make_client(server, 100 + i) for i in range(subscribers)]
    for sub in subs:
        subscribe(server, sub)
    return server, publisher, subs


# -- 1. run_batch ---------------------------------------------------------------------------------


def bench_run_batch(pipeline: int, subscribers: int, repeats: int, calls: int,
                    prepare: Callable[[PushServer, Client], None] | None = None) -> float:
    """µs per command of ``PushServer.execute`` on a batch of ``pipeline`` PUBLISHes
    (``prepare``: as in ``publisher_and_subscribers``)."""
    server, publisher, subs = publisher_and_subscribers(subscribers, prepare)
    data = PUBLISH * pipeline
    everyone = [publisher, *subs]
    results = []
    for _ in range(repeats):
        elapsed = 0
        for _ in range(calls):
            start = time.perf_counter_ns()
            server.in_batch = True
            server.execute(publisher, data, 0)
            server.in_batch = False
            elapsed += time.perf_counter_ns() - start
            server.dirty.clear()
            for client in everyone:
                client.outbox.take_bytes()
        results.append(elapsed / calls / pipeline / 1000)
    return median(results)


# -- 2. one pass of the event loop ----------------------------------------------------------------


def _tcp_pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
    """``count`` connected loopback TCP pairs: (the client's end, the server's end)."""
    pairs = []
    with socket.create_server(("127.0.0.1", 0), backlog=count) as listener:
        for _ in range(count):
            outer = socket.create_connection(listener.getsockname())
            inner, _ = listener.accept()
            for sock in (outer, inner):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            inner.setblocking(False)
            pairs.append((outer, inner))
    return pairs


def _drain(sock: socket.socket, expected: int) -> None:
    got = 0
    while got < expected:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed")
        got += len(chunk)


def bench_loop_pass(clients: int, pipeline: int, subscribers: int, repeats: int,
                    passes: int) -> dict[str, float]:
    """µs per ``serve_ready`` pass with ``clients`` publishers ready, and its parts."""
    server = make_server()
    loop = EpollEventLoop(server)
    server.driver = loop
    pairs = _tcp_pairs(clients + subscribers)
    publishers, subs = [], []
    for index, (outer, inner) in enumerate(pairs):
        client = make_client(server, index + 1, inner.fileno())
        loop._watch(client)
        (publishers if index < clients else subs).append((outer, client))
    for _, client in subs:
        subscribe(server, client)
    data = PUBLISH * pipeline
    reply = len(b":%d\r\n" % subscribers) * pipeline
    frame = len(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$7\r\npayload\r\n")
    poll = loop._epoll.poll
    runs: list[dict[str, float]] = []
    try:
        for _ in range(repeats):
            server.executing_ns = server.flushing_ns = 0
            whole = polled = 0
            for _ in range(passes):
                for outer, _ in publishers:
                    outer.sendall(data)
                start = time.perf_counter_ns()
                events = poll(0)
                middle = time.perf_counter_ns()
                loop.serve_ready(events)
                whole += time.perf_counter_ns() - start
                polled += middle - start
                assert len(events) == clients, f"{len(events)} of {clients} clients ready"
                for outer, _ in publishers:
                    _drain(outer, reply)
                for outer, _ in subs:
                    _drain(outer, frame * pipeline * clients)
            rest = whole - polled - server.executing_ns - server.flushing_ns
            runs.append({"pass": whole, "epoll": polled, "batches": server.executing_ns,
                         "writes": server.flushing_ns, "rest": rest})
    finally:
        for _, client in publishers + subs:
            loop._forget(client)
        loop.close()
        for outer, inner in pairs:
            outer.close()
            inner.close()
    return {key: median([run[key] for run in runs]) / passes / 1000 for key in runs[0]}


def bench_floor_pass(repeats: int, passes: int) -> float:
    """µs per pass of ``bench/push_floor.py``'s forwarder: one PUBLISH ready, one subscriber.

    The same work as row (1, 1, 1) of ``bench_loop_pass`` done by the least a Python
    forwarder does: the difference is what push mode's own code costs per wake-up.
    """
    pairs = _tcp_pairs(2)
    (pub_outer, pub_inner), (sub_outer, sub_inner) = pairs
    with socket.create_server(("127.0.0.1", 0)) as listener:
        forwarder = Forwarder(listener)
        for _, inner in pairs:
            forwarder.sockets[inner.fileno()] = (inner, hiredis.Reader())
            forwarder.epoll.register(inner.fileno(), select.EPOLLIN)
        try:
            sub_outer.sendall(SUBSCRIBE)
            forwarder.handle(forwarder.epoll.poll(1.0))
            _drain(sub_outer, len(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"))
            frame = len(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$7\r\npayload\r\n")
            poll = forwarder.epoll.poll
            results = []
            for _ in range(repeats):
                whole = 0
                for _ in range(passes):
                    pub_outer.sendall(PUBLISH)
                    start = time.perf_counter_ns()
                    forwarder.handle(poll(0))
                    whole += time.perf_counter_ns() - start
                    _drain(pub_outer, 4)
                    _drain(sub_outer, frame)
                results.append(whole / passes / 1000)
        finally:
            forwarder.epoll.close()
            for outer, inner in pairs:
                outer.close()
                inner.close()
    return median(results)


# -- 2b. one command's parts ---------------------------------------------------------------------


def _per_call_us(function, calls: int, repeats: int) -> float:
    results = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(calls):
            function()
        results.append((time.perf_counter_ns() - start) / calls / 1000)
    return median(results)


def bench_command_parts(pipeline: int, subscribers: int, repeats: int, calls: int) -> dict[str, float]:
    """µs per command of each step a batch of ``pipeline`` PUBLISHes goes through."""
    server, publisher, subs = publisher_and_subscribers(subscribers)
    data = PUBLISH * pipeline
    parser = RequestParser()
    commands = [[b"PUBLISH", b"ch", b"payload"]] * pipeline
    payloads = [b"payload"] * pipeline

    def parse() -> None:
        parser.feed(data)
        parser.commands()

    def check() -> None:
        names, channels, _ = zip(*commands, strict=True)
        names.count(names[0])
        channels.count(channels[0])

    def fan_out() -> None:
        server.in_batch = True
        server.pubsub.publish_many(b"ch", payloads, make_frame)
        server.in_batch = False
        server.dirty.clear()
        for sub in subs:
            sub.outbox.take_bytes()

    def whole() -> None:
        server.in_batch = True
        server.execute(publisher, data, 0)
        server.in_batch = False
        server.dirty.clear()
        publisher.outbox.take_bytes()
        for sub in subs:
            sub.outbox.take_bytes()

    parts = {name: _per_call_us(step, calls, repeats) / pipeline
             for name, step in (("parse", parse), ("check", check), ("fan-out", fan_out), ("batch", whole))}
    parts["rest"] = parts["batch"] - parts["parse"] - parts["check"] - parts["fan-out"]
    return parts


# -- 3. a trio wake-up ----------------------------------------------------------------------------


def bench_trio_wakeup(repeats: int, rounds: int) -> float:
    """µs per ``await wait_readable(fd)`` on an fd that stays readable."""
    async def main() -> float:
        results = []
        epoll = select.epoll()
        ready = os.eventfd(1, os.EFD_NONBLOCK)
        epoll.register(ready, select.EPOLLIN)  # a level-triggered member: always readable
        try:
            for _ in range(repeats):
                start = time.perf_counter_ns()
                for _ in range(rounds):
                    await trio.lowlevel.wait_readable(epoll.fileno())
                results.append((time.perf_counter_ns() - start) / rounds / 1000)
        finally:
            epoll.close()
            os.close(ready)
        return median(results)

    return trio.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 7
    scale = 4 if args.quick else 1

    print("push mode microbenchmark (medians; µs)")
    print(f"  python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print()
    print("1. run_batch: µs per PUBLISH command (parse, dispatch, publish, queue output; no sockets)")
    print(f"   {'pipeline':>8} {'0 subs':>8} {'1 sub':>8} {'10 subs':>8}")
    for pipeline in (1, 16, 64):
        row = []
        for subs in (0, 1, 10):
            value = bench_run_batch(pipeline, subs, repeats, 20_000 // pipeline // scale + 50)
            row.append(f"{value:8.2f}")
        print(f"   {pipeline:>8} {' '.join(row)}")
    print()
    print("2. one event-loop pass: C publishers each with one pipeline ready (loopback TCP); µs per pass,")
    print("   and per client: its batch, its write (the kernel's loopback work included), the rest")
    print(f"   {'clients':>7} {'P':>3} {'subs':>4} {'pass':>8} {'epoll':>6} {'batch/cl':>9} {'write/cl':>9} "
          f"{'rest/cl':>8} {'loop/cmd':>9}")
    for clients, pipeline, subs in ((1, 1, 1), (50, 1, 0), (50, 16, 0), (50, 16, 1), (50, 64, 0), (50, 64, 10)):
        parts = bench_loop_pass(clients, pipeline, subs, repeats, 400 // scale)
        loop_only = parts["pass"] - parts["batches"]
        print(f"   {clients:>7} {pipeline:>3} {subs:>4} {parts['pass']:8.1f} {parts['epoll']:6.1f} "
              f"{parts['batches'] / clients:9.2f} {parts['writes'] / clients:9.2f} {parts['rest'] / clients:8.2f} "
              f"{loop_only / clients / pipeline:9.2f}")
    print("   rest = reads and the loop's bookkeeping; loop/cmd = everything but the batches, per command")
    floor = bench_floor_pass(repeats, 400 // scale)
    print(f"   the same 1/1/1 pass by the least a Python forwarder does (bench/push_floor.py): {floor:.1f} µs")
    print()
    print("2b. one batch of P PUBLISHes to one channel, µs per command: parsing (hiredis), the column")
    print("    check of dispatch's fast path, the fan-out (PubSub.publish_many), the rest (dispatch,")
    print("    replies, counters)")
    print(f"   {'P':>3} {'subs':>4} {'parse':>7} {'check':>7} {'fan-out':>8} {'rest':>7} {'batch':>7}")
    for pipeline, subs in ((16, 0), (16, 1), (64, 0), (64, 10)):
        parts = bench_command_parts(pipeline, subs, repeats, 20_000 // pipeline // scale + 50)
        print(f"   {pipeline:>3} {subs:>4} {parts['parse']:7.3f} {parts['check']:7.3f} {parts['fan-out']:8.3f} "
              f"{parts['rest']:7.3f} {parts['batch']:7.3f}")
    print()
    wake = bench_trio_wakeup(repeats, 20_000 // scale)
    print(f"3. trio wake-up (await wait_readable on a ready epoll fd): {wake:.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
