"""Where ``compare`` finds a broker: started in-process, started as a subprocess, or given.

* ``embedded``: ``dualmq.embedded.broker`` in this process (the default: nothing to install,
  nothing to clean up). Cannot be restarted or killed, so scenarios with ``restart``/``kill``
  events use
* ``subprocess``: ``python -m dualmq serve`` on free loopback ports with a scratch data dir;
  ``stop(kill=True)`` sends SIGKILL (a crash: no flush, no goodbye), ``start`` brings it back
  on the same ports and data dir, as an operator restarting a service would.
* ``external``: ``--kafka`` / ``--resp`` addresses (real Kafka and Redis allowed). We do not
  know its settings beyond what it tells us, and cannot restart it.

The subprocess is started with ``sys.executable -m dualmq``: the SDK side never imports the
broker package, it runs it (DESIGN.md §2).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def config_toml(settings: dict[str, dict[str, Any]]) -> str:
    """Render ``{"log": {"fsync": "always"}}`` as TOML for ``dualmq serve --config``."""
    lines = []
    for section, values in settings.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


class BrokerProcess:
    """A ``dualmq serve`` subprocess that can be stopped, killed and started again."""

    def __init__(self, workdir: Path, settings: dict[str, dict[str, Any]]) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.config_path = workdir / "broker.toml"
        self.config_path.write_text(config_toml(settings))
        self.kafka = "127.0.0.1:0"
        self.resp = "127.0.0.1:0"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    async def start(self) -> None:
        """Start (or restart on the same ports) and wait until both listeners accept.

        Raises:
            RuntimeError: the broker exited or was not ready within ``START_TIMEOUT_S``.
        """
        self.starts += 1
        ready = self.workdir / f"ready-{self.starts}.json"
        log_path = self.workdir / f"broker-{self.starts}.log"
        command = [sys.executable, "-m", "dualmq", "serve", "--data-dir", str(self.data_dir),
                   "--kafka", self.kafka, "--resp", self.resp, "--ready-file", str(ready),
                   "--config", str(self.config_path), "--log-format", "json", "--log-level", "warning"]
        with open(log_path, "wb") as log_file:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file,
                                            stderr=subprocess.STDOUT)
        with trio.move_on_after(START_TIMEOUT_S):
            while not ready.exists():
                if self.process.poll() is not None:
                    raise RuntimeError(f"broker exited with {self.process.returncode}: {log_path.read_text()[-2000:]}")
                await trio.sleep(0.02)
            info = json.loads(ready.read_text())
            self.kafka, self.resp = info["kafka"], info["resp"]
            return
        self._force_stop()
        raise RuntimeError(f"broker not ready after {START_TIMEOUT_S} s: {log_path.read_text()[-2000:]}")

    async def stop(self, *, kill: bool) -> None:
        """SIGTERM (graceful: flush, close) or SIGKILL (a crash), then wait for the exit."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        with trio.move_on_after(STOP_TIMEOUT_S):
            while process.poll() is None:
                await trio.sleep(0.01)
        if process.poll() is None:
            self._force_stop()

    def _force_stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)

    def close(self) -> None:
        """Synchronous last-resort cleanup (also used when the run is cancelled)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._force_stop()


class BrokerHandle:
    """The broker one scenario runs against; ``restartable`` tells whether events can kill it."""

    def __init__(self, kind: str, kafka: str | None, resp: str | None, settings: dict[str, dict[str, Any]],
                 process: BrokerProcess | None = None) -> None:
        self.kind = kind
        self._kafka = kafka
        self._resp = resp
        self.settings = settings
        self.process = process

    @property
    def kafka(self) -> str | None:
        return self.process.kafka if self.process is not None else self._kafka

    @property
    def resp(self) -> str | None:
        return self.process.resp if self.process is not None else self._resp

    @property
    def restartable(self) -> bool:
        return self.process is not None

    def setting(self, section: str, key: str, default: Any) -> Any:
        return self.settings.get(section, {}).get(key, default)

    async def bounce(self, *, kill: bool, down_s: float) -> None:
        """Stop (SIGTERM or SIGKILL), stay down ``down_s`` seconds, start again."""
        if self.process is None:
            raise RuntimeError("this broker cannot be restarted by compare")
        await self.process.stop(kill=kill)
        await trio.sleep(down_s)
        await self.process.start()


@asynccontextmanager
async def open_broker(kind: str, settings: dict[str, dict[str, Any]], *, kafka: str | None = None,
                      resp: str | None = None):
    """Yield a ``BrokerHandle`` of ``kind`` embedded | subprocess | external; clean up after.

    Args:
        kind: see the module docstring.
        settings: broker config sections (ignored for ``external``).
        kafka, resp: the addresses for ``external`` (either may be None: that mode is skipped).
    """
    if kind == "external":
        yield BrokerHandle("external", kafka, resp, {})
        return
    if kind == "embedded":
        import dualmq.embedded  # composition root; imported lazily (it pulls in the broker)

        with tempfile.TemporaryDirectory(prefix="dualmq-compare-") as scratch:
            async with dualmq.embedded.broker(Path(scratch) / "data", **settings) as running:
                yield BrokerHandle("embedded", running.kafka, running.resp, settings)
        return
    with tempfile.TemporaryDirectory(prefix="dualmq-compare-") as scratch:
        process = BrokerProcess(Path(scratch), settings)
        try:
            await process.start()
            yield BrokerHandle("subprocess", None, None, settings, process)
        finally:
            with trio.CancelScope(shield=True):
                await process.stop(kill=False)
            process.close()


def cpu_count() -> int:
    return os.cpu_count() or 1
