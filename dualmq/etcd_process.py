"""Run a one-member etcd as a child process on free loopback ports: for tests, lessons and ``compare``.

    from dualmq.etcd_process import EtcdProcess

    with EtcdProcess(tmp / "etcd") as etcd:          # ports chosen here, health waited for
        print(etcd.endpoint)                         # "127.0.0.1:40379"
        # dualmq serve --node-id 1 --cluster etcd://127.0.0.1:40379 ...

A dualmq cluster keeps its membership, controller and partition assignments in etcd
(docs/cluster.md); nothing else in the project needs it. etcd is Debian's ``etcd-server`` (the
binary is ``etcd``); ``find_etcd`` returns None where it is not installed.

Why the ports are chosen here: etcd has no "port 0" - it must be told its client port and its
peer port. A port that was free when we looked may be taken by the time etcd binds it, so a
start that fails with "address already in use" is retried on new ports (a few times). Ready
means ``GET /health`` answers ``{"health": "true"}``, within a timeout; a start that dies or
times out raises ``EtcdStartError`` quoting etcd's log.

Only the standard library is used (``urllib`` for the health check), so ``dualmq`` stays free
of the cluster extra's packages.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from dualmq.errors import DualmqError
from dualmq.process import STOP_TIMEOUT_S, ChildProcess

__all__ = ["EtcdProcess", "EtcdStartError", "find_etcd"]

START_TIMEOUT_S = 15.0
BIND_RETRIES = 5
POLL_INTERVAL_S = 0.05
HEALTH_TIMEOUT_S = 1.0
# etcd is on loopback: an HTTP proxy named in the environment must not be asked to reach it.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EtcdStartError(DualmqError):
    """etcd exited before it was healthy, or was not healthy in time (its log is quoted)."""


def find_etcd() -> str | None:
    """The path of the ``etcd`` program (Debian package ``etcd-server``), or None."""
    return shutil.which("etcd")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EtcdProcess(ChildProcess):
    """One single-member etcd, on loopback, with its data in ``data_dir``.

    Args:
        data_dir: etcd's data directory (created by etcd).
        host: the loopback address to listen on.
        log_path: where etcd's output goes (default ``<data_dir>.log`` beside it).

    Attributes:
        client_port, peer_port: the ports of the current (or last) start.
    """

    def __init__(self, data_dir: Path | str, *, host: str = "127.0.0.1", log_path: Path | str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.log_path = Path(log_path) if log_path is not None else self.data_dir.with_name(self.data_dir.name + ".log")
        self.client_port = 0
        self.peer_port = 0
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        """``HOST:PORT`` of the client listener, as ``--cluster etcd://HOST:PORT`` takes it."""
        return f"{self.host}:{self.client_port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        program = find_etcd()
        if program is None:
            raise EtcdStartError("etcd not found: install the Debian package 'etcd-server'")
        peer = f"http://{self.host}:{self.peer_port}"
        client = f"http://{self.host}:{self.client_port}"
        return [program, "--name", "dualmq-etcd", "--data-dir", str(self.data_dir),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"dualmq-etcd={peer}",
                "--logger", "zap", "--log-level", "warn"]

    def start(self, timeout: float = START_TIMEOUT_S) -> EtcdProcess:
        """Start etcd on free ports and wait until it reports itself healthy.

        Raises:
            RuntimeError: it is already running.
            EtcdStartError: etcd is not installed, exited, or was not healthy within ``timeout``.
        """
        if self.running:
            raise RuntimeError(f"etcd is already running (pid {self.process.pid})")
        for attempt in range(BIND_RETRIES):
            self.client_port, self.peer_port = _free_port(self.host), _free_port(self.host)
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log_file:
                self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log_file,
                                                stderr=subprocess.STDOUT)
            try:
                self._wait_healthy(time.monotonic() + timeout)
                return self
            except EtcdStartError:
                self._kill_and_reap()
                if "address already in use" in self.log_text()[offset:] and attempt + 1 < BIND_RETRIES:
                    continue  # another process took a port between our look and etcd's bind
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_healthy(self, deadline: float) -> None:
        assert self.process is not None
        while True:
            if self.process.poll() is not None:
                raise EtcdStartError(f"etcd exited with status {self.process.returncode} before it was healthy; "
                                     f"its log ({self.log_path}) ends:\n{self.log_tail()}")
            if self.healthy():
                return
            if time.monotonic() > deadline:
                raise EtcdStartError(f"etcd was not healthy within the timeout; its log ({self.log_path}) "
                                     f"ends:\n{self.log_tail()}")
            time.sleep(POLL_INTERVAL_S)

    def healthy(self) -> bool:
        """Whether ``GET /health`` answers ``{"health": "true"}`` now."""
        try:
            with _NO_PROXY.open(f"{self.url}/health", timeout=HEALTH_TIMEOUT_S) as response:
                return json.loads(response.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL if etcd has not exited within ``timeout``. Safe when not running."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_and_reap()

    def __enter__(self) -> EtcdProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.process.pid}" if self.running else "not running"
        return f"<EtcdProcess {self.endpoint} {state}>"
