"""Run ``dualmq serve`` as a child process: start it on free ports, wait until it is ready, stop it.

    from dualmq.process import BrokerProcess

    with BrokerProcess(tmp / "data", "--fsync", "always") as broker:   # ports chosen by the OS
        print(broker.kafka_address, broker.resp_address)                # "127.0.0.1:41873" ...
        broker.kill()                                                   # SIGKILL: a crash
        broker.start()                                                  # same data dir, same ports
    # stopped on leaving the block: SIGTERM, and SIGKILL if it has not exited in time

In a trio program use ``async with`` (or ``await start_async()`` / ``await stop_async()``):
the waits then sleep with trio instead of blocking every other task.

Tests, ``compare``, the benchmarks and the lessons all start brokers this way, so "start a
broker and know when it listens" is written once. Use it when the broker must be a separate
process: to kill it, to restart it on the same data, or to measure it apart from the client.
Otherwise ``dualmq.embedded`` runs one inside your process, which is lighter.

How readiness is known: ``dualmq serve --ready-file F`` writes ``F`` (atomically, after log
recovery and once both listeners accept) with the addresses it bound, so port 0 works and
nobody has to guess a free port or poll a socket. The file is removed before each start, so
an old one left by a killed broker is never mistaken for the new one.

How it is run: ``sys.executable -P -m dualmq serve``. ``-P`` keeps the current directory off
``sys.path``: a folder there that happens to be called ``dualmq``, ``broker`` or ``wire``
cannot replace the installed package in the child. Its standard output and error go to a log
file, unbuffered, so the last lines before a crash are there to read.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

from dualmq.errors import DualmqError

__all__ = ["BrokerCluster", "BrokerProcess", "BrokerStartError", "serve_command"]

START_TIMEOUT_S = 20.0   # recovery of a large log included; a healthy start takes well under 1 s
STOP_TIMEOUT_S = 10.0    # a graceful stop flushes and closes every log; after this, SIGKILL
POLL_INTERVAL_S = 0.01   # how often the ready file and the process are looked at
LOG_TAIL_CHARS = 2000    # how much of the broker's log an error message quotes


class BrokerStartError(DualmqError):
    """The broker exited before it was ready, or was not ready within the timeout (its log is quoted)."""


def serve_command(data_dir: Path, ready_file: Path, *serve_args: str, kafka: str = "127.0.0.1:0",
                  resp: str = "127.0.0.1:0", log_level: str = "info") -> list[str]:
    """The argv that runs ``dualmq serve`` with this interpreter, JSON logs and a ready file.

    Args:
        data_dir: the broker's data directory.
        ready_file: where the broker writes its addresses once it listens.
        serve_args: more ``dualmq serve`` options, e.g. ``"--config", "broker.toml"``.
        kafka, resp: listen addresses (port 0: any free port).
        log_level: ``debug`` | ``info`` | ``warning`` | ``error``.

    Returns:
        The command line, ready for ``subprocess``.
    """
    return [sys.executable, "-P", "-m", "dualmq", "serve", "--data-dir", str(data_dir),
            "--kafka", kafka, "--resp", resp, "--ready-file", str(ready_file),
            "--log-format", "json", "--log-level", log_level, *serve_args]


def split_address(address: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` -> ``(host, port)``."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class ChildProcess:
    """What every child server process here shares: its ``process`` and its log file."""

    process: subprocess.Popen | None
    log_path: Path

    def _kill_and_reap(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)

    def log_text(self) -> str:
        """Everything the process wrote so far, every start included ('' if nothing yet)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return self.log_text()[-chars:]


class BrokerProcess(ChildProcess):
    """One ``dualmq serve`` child process, which can be stopped, killed and started again.

    Nothing runs until ``start`` (or ``with`` / ``async with``). After the first start the
    listen addresses are the ones the broker bound, so a restart comes back on the same ports
    and data dir - as an operator restarting a service would, and where clients look for it.

    Args:
        data_dir: the broker's data directory (created by the broker if missing).
        serve_args: more ``dualmq serve`` options, e.g. ``"--fsync", "always"``.
        kafka, resp: listen addresses; port 0 (the default) lets the OS choose.
        log_path: where the broker's output is appended (default: ``<data_dir>.log`` beside it).
        ready_file: where it reports its addresses (default: ``<data_dir>.ready.json`` beside it).
        log_level: the broker's log level (its logs are JSON lines, see ``log_lines``).
        open_file_limit: run the broker as under ``ulimit -n N`` (soft and hard limit), to
            show how it behaves with few file descriptors; None keeps this process's limit.

    Attributes:
        kafka_address, resp_address: ``"host:port"``; the bound ones once started.
        ready: what the ready file said (``{"kafka": ..., "resp": ..., "pid": ...}``).
        spawned_at: ``time.perf_counter()`` when the last start spawned the process.
        ready_seconds: seconds from that spawn to seeing its ready file (interpreter start-up
            and log recovery included: what a restart costs).
        starts: how many times it was started.
    """

    def __init__(self, data_dir: Path | str, *serve_args: str, kafka: str = "127.0.0.1:0",
                 resp: str = "127.0.0.1:0", log_path: Path | str | None = None,
                 ready_file: Path | str | None = None, log_level: str = "info",
                 open_file_limit: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.open_file_limit = open_file_limit
        self.serve_args = serve_args
        self.kafka_address = kafka
        self.resp_address = resp
        self.log_path = Path(log_path) if log_path is not None else self.data_dir.with_name(self.data_dir.name + ".log")
        self.ready_file = (Path(ready_file) if ready_file is not None
                           else self.data_dir.with_name(self.data_dir.name + ".ready.json"))
        self.log_level = log_level
        self.process: subprocess.Popen | None = None
        self.ready: dict[str, Any] = {}
        self.ready_seconds = float("nan")
        self.starts = 0
        self.spawned_at = 0.0

    # --- where it is ------------------------------------------------------------------------

    @property
    def kafka(self) -> tuple[str, int]:
        """The Kafka listener as ``(host, port)``, for sockets."""
        return split_address(self.kafka_address)

    @property
    def resp(self) -> tuple[str, int]:
        """The RESP listener as ``(host, port)``, for sockets."""
        return split_address(self.resp_address)

    @property
    def pid(self) -> int:
        """The process id of the current (or last) broker process.

        Raises:
            RuntimeError: it was never started.
        """
        if self.process is None:
            raise RuntimeError("the broker was never started")
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        """The argv the next ``start`` runs."""
        return serve_command(self.data_dir, self.ready_file, *self.serve_args, kafka=self.kafka_address,
                             resp=self.resp_address, log_level=self.log_level)

    # --- starting ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_S, *, poll_interval: float = POLL_INTERVAL_S) -> BrokerProcess:
        """Spawn the broker and block until its ready file appears.

        Args:
            timeout: seconds to wait for the ready file.
            poll_interval: how often to look (the resolution of ``ready_seconds``).

        Returns:
            ``self``, now running, with the bound addresses filled in.

        Raises:
            RuntimeError: it is already running.
            BrokerStartError: it exited first (a bad option, a locked data dir, a port in use)
                or was not ready in time (it is then killed). The message quotes its log.
        """
        deadline = self._spawn(timeout)
        while not self._is_ready(deadline):
            time.sleep(poll_interval)
        return self

    async def start_async(self, timeout: float = START_TIMEOUT_S, *,
                          poll_interval: float = POLL_INTERVAL_S) -> BrokerProcess:
        """``start`` for trio programs: the wait sleeps with trio, so other tasks keep running.

        Raises:
            RuntimeError, BrokerStartError: as ``start``.
        """
        deadline = self._spawn(timeout)
        while not self._is_ready(deadline):
            await trio.sleep(poll_interval)
        return self

    def _limit_open_files(self) -> None:
        # Runs in the child between fork and exec. Soft *and* hard limit: ``dualmq serve``
        # lifts its soft limit to the hard one at start, so only the hard one really binds.
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_file_limit, self.open_file_limit))

    def _spawn(self, timeout: float) -> float:
        if self.running:
            raise RuntimeError(f"the broker is already running (pid {self.pid})")
        self.ready_file.unlink(missing_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log_file:
            self.spawned_at = time.perf_counter()
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log_file,
                                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                            preexec_fn=self._limit_open_files if self.open_file_limit else None)
        return time.monotonic() + timeout

    def _is_ready(self, deadline: float) -> bool:
        """True once the ready file is complete; raises if the broker died or time is up."""
        assert self.process is not None
        if self.ready_file.exists():
            try:
                ready = json.loads(self.ready_file.read_text())
            except ValueError:  # written atomically by the broker; tolerate anyone else's
                ready = None
            if ready:
                self.ready_seconds = time.perf_counter() - self.spawned_at
                self.ready = ready
                self.kafka_address, self.resp_address = ready["kafka"], ready["resp"]
                return True
        if self.process.poll() is not None:
            raise BrokerStartError(f"dualmq serve exited with status {self.process.returncode} before it was "
                                   f"ready; its log ({self.log_path}) ends:\n{self.log_tail()}")
        if time.monotonic() > deadline:
            self._kill_and_reap()
            raise BrokerStartError(f"dualmq serve was not ready within the timeout; its log ({self.log_path}) "
                                   f"ends:\n{self.log_tail()}")
        return False

    # --- stopping ---------------------------------------------------------------------------

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Send ``sig`` and wait for the exit; SIGKILL if it has not exited within ``timeout``.

        SIGTERM and SIGINT are a graceful stop (flush, close, remove the ready file; exit status
        0 and 130 respectively); SIGKILL is a crash (nothing flushed by the broker, the ready
        file left behind). Safe to call when it is not running.

        Returns:
            The exit status (negative: killed by that signal), None if never started.
        """
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_and_reap()
        return process.returncode

    def kill(self) -> int | None:
        """SIGKILL, like a crash or a power cut of the process; returns the exit status."""
        return self.stop(signal.SIGKILL)

    async def stop_async(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """``stop`` for trio programs: waits with trio sleeps.

        Returns:
            The exit status, None if never started.
        """
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            with trio.move_on_after(timeout):
                while process.poll() is None:
                    await trio.sleep(POLL_INTERVAL_S)
            if process.poll() is None:
                self._kill_and_reap()
        return process.returncode

    # --- its log ------------------------------------------------------------------------------

    def log_lines(self) -> list[dict[str, Any]]:
        """The broker's log as one dict per JSON line (other lines, e.g. a traceback, skipped)."""
        lines = []
        for raw in self.log_text().splitlines():
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(line, dict):
                lines.append(line)
        return lines

    # --- context managers -----------------------------------------------------------------------

    def __enter__(self) -> BrokerProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> BrokerProcess:
        if not self.running:
            await self.start_async()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Shielded: the broker must be stopped even when the block is left by cancellation;
        # stop_async's own timeout (then SIGKILL) bounds the wait.
        with trio.CancelScope(shield=True):
            await self.stop_async()

    def __repr__(self) -> str:
        state = f"pid {self.process.pid}" if self.running else "not running"
        return f"<BrokerProcess {self.data_dir} kafka={self.kafka_address} resp={self.resp_address} {state}>"


class BrokerCluster:
    """N ``dualmq serve --cluster`` processes on one etcd, started together (docs/cluster.md).

    Broker ``i`` (1..N) has node id ``i``, data dir ``<workdir>/broker-<i>``, and its log and
    ready file beside it; all ports are chosen by the OS.

    Args:
        workdir: where the brokers' directories go.
        etcd: the etcd client endpoint, ``HOST:PORT``.
        count: how many brokers.
        serve_args: more ``dualmq serve`` options for every broker (``--config F`` ...).

    Attributes:
        brokers: the ``BrokerProcess`` of node ``i`` at index ``i - 1``.
    """

    def __init__(self, workdir: Path | str, etcd: str, count: int = 3, *serve_args: str) -> None:
        workdir = Path(workdir)
        self.etcd = etcd
        self.brokers = [BrokerProcess(workdir / f"broker-{node}", *serve_args, "--node-id", str(node),
                                      "--cluster", f"etcd://{etcd}") for node in range(1, count + 1)]

    def node(self, node_id: int) -> BrokerProcess:
        return self.brokers[node_id - 1]

    def start(self, timeout: float = START_TIMEOUT_S) -> BrokerCluster:
        """Spawn every broker at once, then wait until each is ready.

        Raises:
            BrokerStartError: one of them failed (all are stopped then).
        """
        deadline = time.monotonic() + timeout
        try:
            for broker in self.brokers:
                broker._spawn(timeout)
            for broker in self.brokers:
                while not broker._is_ready(deadline):
                    time.sleep(POLL_INTERVAL_S)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every broker that runs (SIGTERM, then SIGKILL after the timeout)."""
        for broker in self.brokers:
            if broker.running:
                broker.process.terminate()
        for broker in self.brokers:
            broker.stop()

    @property
    def bootstrap(self) -> str:
        """Every running broker's Kafka address, comma-separated (a client's bootstrap list)."""
        return ",".join(b.kafka_address for b in self.brokers if b.running)

    def __enter__(self) -> BrokerCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
