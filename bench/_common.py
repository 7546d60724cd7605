"""Helpers shared by the benchmark scripts: free ports, child processes, medians.

Nothing here measures anything. It starts and stops the servers a benchmark compares (always
with a deadline, always killed in the end; ``dualmq serve`` through ``dualmq.process``), finds
a free loopback port for servers that cannot bind port 0 themselves (redis-server; the tests
use this ``free_port`` too), and computes the summary numbers the scripts print.

The broker runs as ``python -P -m dualmq``, so it is the ``dualmq`` installed in the venv
(``make install`` installs this checkout, editable), whatever the current directory.
"""

from __future__ import annotations

import shutil
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path

from dualmq.process import BrokerProcess, BrokerStartError

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


class BenchError(RuntimeError):
    """A benchmark could not run (a server did not start, a client timed out, …)."""


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago: bind port 0, read the port, close.

    Racy by nature (someone else may take it before the server binds it), so callers that
    start a server on it retry with a new port when the start fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def median(values: list[float]) -> float:
    """Median of the values that are numbers (NaN for failed runs is skipped); NaN if none."""
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else float("nan")


def cpu_speed_ms() -> float:
    """Milliseconds one fixed pure-Python loop takes now (best of 3): the machine's speed.

    On a shared virtual machine the same code runs up to twice as fast at one moment as at
    another. Printed beside each run, it shows which figures were taken on a slow machine;
    ratios between clients measured back to back are what such swings leave intact.
    """
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best * 1000


def percentile(sorted_values: list[int] | list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (fraction 0.5 = p50, 0.99 = p99)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(fraction * len(sorted_values) + 0.999999)))
    return float(sorted_values[rank - 1])


def install_sigterm_as_exit() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks stop the children we started."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def stop_process(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Safe on an already exited process."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)
    except ProcessLookupError:
        pass


def _wait_for_ping(port: int, proc: subprocess.Popen, deadline: float) -> bool:
    """True once a RESP PING on ``port`` answers +PONG; False if the process died or time ran out."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.5) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def start_redis(workdir: Path, extra_args: list[str], timeout: float = 10.0) -> tuple[subprocess.Popen, int]:
    """Start ``redis-server`` on a free loopback port (it cannot report port 0 back to us).

    Returns:
        The process and its port. Up to three attempts, each on a fresh port.

    Raises:
        BenchError: redis-server is missing or would not answer PING.
    """
    exe = shutil.which("redis-server")
    if exe is None:
        raise BenchError("redis-server not found (Debian package redis-server)")
    log_path = workdir / "redis-server.log"
    for _ in range(3):
        port = free_port()
        args = [exe, "--port", str(port), "--bind", HOST, "--dir", str(workdir),
                "--daemonize", "no", "--logfile", str(log_path), *extra_args]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if _wait_for_ping(port, proc, time.monotonic() + timeout):
            return proc, port
        stop_process(proc)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise BenchError(f"redis-server did not start:\n{tail}")


def start_dualmq(workdir: Path, config_text: str, timeout: float = 20.0) -> tuple[subprocess.Popen, int]:
    """Start ``dualmq serve`` on ports chosen by the OS (``dualmq.process``) and wait until it is ready.

    Args:
        workdir: holds the config file, the data dir, the ready file and the log.
        config_text: the TOML config (e.g. lifted output-buffer limits).

    Returns:
        The process (stop it with ``stop_process``) and its RESP port.

    Raises:
        BenchError: the broker exited or did not become ready within ``timeout``.
    """
    config = workdir / "dualmq.toml"
    config.write_text(config_text)
    broker = BrokerProcess(workdir / "dualmq-data", "--config", str(config), log_path=workdir / "dualmq.log",
                           ready_file=workdir / "dualmq-ready.json", log_level="warning")
    try:
        broker.start(timeout)
    except BrokerStartError as exc:
        raise BenchError(str(exc)) from None
    return broker.process, broker.resp[1]


def tool_version(args: list[str]) -> str:
    """First line a ``--version``-style command prints, or '?'."""
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.strip().splitlines()[0] if out.strip() else "?"
