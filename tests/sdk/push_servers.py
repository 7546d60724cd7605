"""Servers for the push SDK tests: ``dualmq serve`` and a real ``redis-server``, same interface.

Both run as child processes on free loopback ports, can be killed with SIGKILL and restarted
on the *same* port (what the reconnect tests need), and are always stopped at the end.
redis-server cannot bind port 0 and report it, so we pick a free port (the benchmarks'
``free_port``, the one definition) and retry on a clash.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from bench._common import free_port
from dualmq.process import BrokerProcess
from tests.support import require_binary

START_TIMEOUT = 20.0


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class DualmqServer:
    """``dualmq serve`` (push mode) through ``dualmq.process``."""

    kind = "dualmq"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port: int | None = None
        self._brokers: list[BrokerProcess] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        generation = len(self._brokers) + 1
        resp = "127.0.0.1:0" if self.port is None else f"127.0.0.1:{self.port}"
        # A fresh data dir each time: a SIGKILLed broker may leave its lock behind, and push
        # mode keeps nothing on disk anyway.
        broker = BrokerProcess(self.workdir / f"data-{generation}", resp=resp)
        self._brokers.append(broker)
        broker.start()
        self.port = broker.resp[1]

    def kill(self) -> None:
        self._brokers[-1].kill()

    def close(self) -> None:
        for broker in self._brokers:
            broker.stop()


class RedisServer:
    """A real redis-server (Debian package), persistence off."""

    kind = "redis"

    def __init__(self, workdir: Path) -> None:
        self.exe = require_binary("redis-server", "redis-server")
        self.workdir = workdir
        self.port: int | None = None
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        fixed = self.port is not None
        for _ in range(1 if fixed else 3):
            port = self.port if fixed else free_port()
            self.process = subprocess.Popen(
                [self.exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.workdir), "--daemonize", "no", "--logfile", ""],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.process.poll() is None:
                if answers_ping(port):
                    self.port = port
                    return
                time.sleep(0.02)
            self.kill()
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def close(self) -> None:
        self.kill()


SERVERS = {"dualmq": DualmqServer, "redis": RedisServer}


def have_redis() -> bool:
    return shutil.which("redis-server") is not None
