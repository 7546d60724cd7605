"""Helpers shared by tests: real third-party tools, a real broker process, a raw socket client.

Interop tests need programs nobody here wrote (kcat, redis-cli, redis-server, ...). On a
developer machine without them those tests skip with a message naming the Debian package;
with ``DUALMQ_REQUIRE_INTEROP=1`` (set by ``.ci/run``) a missing tool is a failure instead,
because CI must really run them.

``broker_process`` runs ``dualmq serve`` through ``dualmq.process`` (the same code compare,
the benchmarks and the lessons use), with its files in the test's directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dualmq.etcd_process import EtcdProcess
from dualmq.process import BrokerProcess, serve_command

__all__ = [
    "KAFKA_PYTHON_IMPORT_WARNING",
    "KAFKA_PYTHON_NOISE",
    "BrokerProcess",
    "RawClient",
    "broker_process",
    "etcd_process",
    "fast_groups_broker",
    "fast_groups_config",
    "kafka_python_noise",
    "require_binary",
    "require_module",
    "serve_command",
]

# kafka-python 3.0's own noise, not the broker's: it loads its schemas with an
# importlib.resources call deprecated since Python 3.11, and leaves some closed clients'
# sockets to the garbage collector ("Exception ignored in: <socket.socket ...>"). A module
# that drives kafka-python carries these marks; tests/conftest.py collects the leaked sockets
# when such a module ends, so the warning cannot fall on a later module's test.
KAFKA_PYTHON_IMPORT_WARNING = "ignore:.*is deprecated. Use files\\(\\) instead:DeprecationWarning"
KAFKA_PYTHON_NOISE = (
    pytest.mark.filterwarnings(KAFKA_PYTHON_IMPORT_WARNING),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
)


def kafka_python_noise(test):
    """Put the ``KAFKA_PYTHON_NOISE`` marks on one test (a whole module lists them in ``pytestmark``)."""
    for mark in KAFKA_PYTHON_NOISE:
        test = mark(test)
    return test


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


@contextlib.contextmanager
def etcd_process(workdir: Path) -> Iterator[EtcdProcess]:
    """A one-member etcd on free loopback ports, healthy when yielded, stopped on exit.

    Skips the test when etcd is not installed (Debian ``etcd-server``), fails it under
    ``DUALMQ_REQUIRE_INTEROP=1``.
    """
    require_binary("etcd", "etcd-server")
    with EtcdProcess(workdir / "etcd", log_path=workdir / "etcd.log") as etcd:
        yield etcd


# --- a real broker process -------------------------------------------------------------------


@contextlib.contextmanager
def broker_process(workdir: Path, *extra: str, data_dir: Path | None = None) -> Iterator[BrokerProcess]:
    """``dualmq serve`` on port 0 (``dualmq.process``), ready when yielded, stopped on exit.

    Its ready file and log are new files in ``workdir`` for every call (``ready-<n>.json``,
    ``broker-<n>.log``), so ``log_lines()`` shows this broker's lines only, even when a test
    starts a second broker on the same data dir.
    """
    stamp = time.monotonic_ns()
    broker = BrokerProcess(data_dir or workdir / "data", *extra, ready_file=workdir / f"ready-{stamp}.json",
                           log_path=workdir / f"broker-{stamp}.log")
    with broker:
        yield broker


def fast_groups_config(workdir: Path) -> Path:
    """A config file (in ``workdir``) without the 3 s wait for more members before a new group's
    first rebalance (``group_initial_rebalance_delay_ms = 0``): group tests run faster."""
    config = workdir / "fast-groups.toml"
    config.write_text("[kafka]\ngroup_initial_rebalance_delay_ms = 0\n")
    return config


@contextlib.contextmanager
def fast_groups_broker(workdir: Path) -> Iterator[BrokerProcess]:
    """``broker_process`` with ``fast_groups_config``."""
    with broker_process(workdir, "--config", str(fast_groups_config(workdir))) as broker:
        yield broker


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
