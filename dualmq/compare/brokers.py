"""Where ``compare`` finds a broker: started in-process, started as a subprocess, or given.

* ``embedded``: ``dualmq.embedded.broker`` in this process (the default: nothing to install,
  nothing to clean up). Cannot be restarted or killed, so scenarios with ``restart``/``kill``
  events use
* ``subprocess``: ``dualmq serve`` as a child process (``dualmq.process``) on free loopback
  ports with a scratch data dir; ``bounce(kill=True)`` sends SIGKILL (a crash: no flush, no
  goodbye), then brings it back on the same ports and data dir, as an operator restarting a
  service would.
* ``external``: ``--kafka`` / ``--resp`` addresses (real Kafka and Redis allowed). We do not
  know its settings beyond what it tells us, and cannot restart it. It may ask compare's
  clients to log in (``security``); ``open_broker`` checks that they can before yielding.

The subprocess runs the broker rather than importing it: the SDK side never imports the
broker package (only the embedded broker, a composition root, does).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from dualmq.compare.security import ClientSecurity, check_login
from dualmq.process import BrokerProcess


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


class BrokerHandle:
    """The broker one scenario runs against; ``restartable`` tells whether events can kill it."""

    def __init__(self, kind: str, kafka: str | None, resp: str | None, settings: dict[str, dict[str, Any]],
                 process: BrokerProcess | None = None, security: ClientSecurity | None = None,
                 http: str = "") -> None:
        self.kind = kind
        # How the clients log in to an external broker that asks them to; plaintext and no
        # login for a broker compare starts.
        self.security = security or ClientSecurity()
        self._kafka = kafka
        self._resp = resp
        self._http = http
        self.settings = settings
        self.process = process

    @property
    def kafka(self) -> str | None:
        return self.process.kafka_address if self.process is not None else self._kafka

    @property
    def resp(self) -> str | None:
        return self.process.resp_address if self.process is not None else self._resp

    @property
    def http(self) -> str:
        """The broker's HTTP listener (metrics, dashboard); "" when it has none."""
        return self.process.ready.get("http", "") if self.process is not None else self._http

    @property
    def restartable(self) -> bool:
        return self.process is not None

    def setting(self, section: str, key: str, default: Any) -> Any:
        return self.settings.get(section, {}).get(key, default)

    async def bounce(self, *, kill: bool, down_s: float) -> None:
        """Stop (SIGTERM or SIGKILL), stay down ``down_s`` seconds, start again."""
        if self.process is None:
            raise RuntimeError("this broker cannot be restarted by compare")
        await self.process.stop_async(signal.SIGKILL if kill else signal.SIGTERM)
        await trio.sleep(down_s)
        await self.process.start_async()


@asynccontextmanager
async def open_broker(kind: str, settings: dict[str, dict[str, Any]], *, kafka: str | None = None,
                      resp: str | None = None, verbose: bool = False,
                      security: ClientSecurity | None = None, dashboard: bool = False):
    """Yield a ``BrokerHandle`` of ``kind`` embedded | subprocess | external; clean up after.

    Args:
        kind: see the module docstring.
        settings: broker config sections (ignored for ``external``).
        kafka, resp: the addresses for ``external`` (either may be None: that mode is skipped).
        verbose: a subprocess broker logs at info level, in console format (``--verbose`` shows
            its log file); otherwise warnings and errors only.
        security: how the clients log in to the external broker (TLS, SASL, AUTH).
        dashboard: the broker also serves the live dashboard and ``/metrics`` on a free port,
            and its address is printed once it is up (``--dashboard``; not for ``external``).

    Raises:
        AccessDenied: an external broker refused the clients' login, or could not be spoken to
            with these settings (``security.check_login``).
    """
    if kind == "external":
        security = security or ClientSecurity()
        await check_login(security, kafka, resp)
        yield BrokerHandle("external", kafka, resp, {}, security=security)
        return
    if dashboard:
        settings = {**settings, "http": {"listen": "127.0.0.1:0"}}
    if kind == "embedded":
        import dualmq.embedded  # composition root; imported lazily (it pulls in the broker)

        with tempfile.TemporaryDirectory(prefix="dualmq-compare-") as scratch:
            async with dualmq.embedded.broker(Path(scratch) / "data", **settings) as running:
                handle = BrokerHandle("embedded", running.kafka, running.resp, settings, http=running.http)
                _announce_dashboard(handle)
                yield handle
        return
    with tempfile.TemporaryDirectory(prefix="dualmq-compare-") as scratch:
        config = Path(scratch) / "broker.toml"
        config.write_text(config_toml(settings))
        console = ("--log-format", "console") if verbose else ()
        async with BrokerProcess(Path(scratch) / "data", "--config", str(config), *console,
                                 log_level="info" if verbose else "warning") as process:
            handle = BrokerHandle("subprocess", None, None, settings, process)
            _announce_dashboard(handle)
            yield handle


def _announce_dashboard(handle: BrokerHandle) -> None:
    """Print where the live dashboard is, when the broker serves one (``compare --dashboard``)."""
    if handle.http:
        print(f"dashboard: http://{handle.http}/  (metrics: http://{handle.http}/metrics)", file=sys.stderr,
              flush=True)


def cpu_count() -> int:
    return os.cpu_count() or 1
