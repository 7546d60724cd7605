"""Helpers shared by tests: finding real third-party tools, free of any broker code.

Interop tests need programs nobody here wrote (kcat, redis-cli, redis-server, ...). On a
developer machine without them those tests skip with a message naming the Debian package;
with ``DUALMQ_REQUIRE_INTEROP=1`` (set by ``.ci/run``) a missing tool is a failure instead,
because CI must really run them.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_INTEROP = os.environ.get("DUALMQ_REQUIRE_INTEROP") == "1"


def require_binary(name: str, package: str) -> str:
    """Return the path of program ``name``, or skip (fail under CI) naming its package."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: install the Debian package {package!r} (make test does, as root)"
        if REQUIRE_INTEROP:
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_module(name: str, package: str):
    """Import and return module ``name``, or skip (fail under CI) naming its pip package."""
    try:
        return __import__(name)
    except ImportError:
        message = f"python module {name} not importable: pip install {package!r}"
        if REQUIRE_INTEROP:
            pytest.fail(message)
        pytest.skip(message)


# --- a real broker process -------------------------------------------------------------------

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0


def split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


@attrs.define
class RunningBroker:
    """A ``dualmq serve`` subprocess started on ephemeral ports."""

    process: subprocess.Popen
    kafka: tuple[str, int]
    resp: tuple[str, int]
    data_dir: Path
    log_path: Path

    @property
    def kafka_address(self) -> str:
        return f"{self.kafka[0]}:{self.kafka[1]}"

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                pass
        return lines

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the broker and wait for it; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_SECONDS)
        return self.process.returncode


def serve_command(data_dir: Path, ready_file: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "dualmq", "serve",
        "--data-dir", str(data_dir),
        "--kafka", "127.0.0.1:0",
        "--resp", "127.0.0.1:0",
        "--ready-file", str(ready_file),
        "--log-format", "json",
        *extra,
    ]


@contextlib.contextmanager
def broker_process(workdir: Path, *extra: str, data_dir: Path | None = None) -> Iterator[RunningBroker]:
    """Start ``dualmq serve`` on port 0, wait until it is ready, stop it on exit."""
    data_dir = data_dir or workdir / "data"
    ready_file = workdir / f"ready-{time.monotonic_ns()}.json"
    log_path = workdir / f"broker-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            serve_command(data_dir, ready_file, *extra),
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready_file.exists():
            if process.poll() is not None:
                raise RuntimeError(f"broker exited with {process.returncode}: {log_path.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"broker not ready after {START_TIMEOUT_SECONDS} s: {log_path.read_text()}")
            time.sleep(0.02)
        ready = json.loads(ready_file.read_text())
        broker = RunningBroker(process, split_address(ready["kafka"]), split_address(ready["resp"]),
                               data_dir, log_path)
        yield broker
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_SECONDS)


class RawClient:
    """A blocking socket with a timeout, for byte-exact protocol tests."""

    def __init__(self, address: tuple[str, int], timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed after {self.buffer!r}")
            self.buffer += chunk
        out, self.buffer = self.buffer[:count], self.buffer[count:]
        return out

    def expect(self, expected: bytes) -> None:
        got = self.read_exactly(len(expected))
        assert got == expected

    def read_until_closed(self) -> bytes:
        data = self.buffer
        self.buffer = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return data
            data += chunk

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
