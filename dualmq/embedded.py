"""A real broker inside your trio program, on free ports: for tests, examples and ``compare``.

    async with dualmq.embedded.broker(tmp_dir) as b:
        print(b.kafka, b.resp)          # "127.0.0.1:40123", "127.0.0.1:40124"

It is the same broker ``dualmq serve`` runs (``dualmq.daemon.run_broker``), not a fake: the
same log on disk, the same listeners, the same limits. Only the ports differ (0 = pick a free
one) and nothing handles signals — leaving the ``async with`` block shuts it down, flushing
and closing the log.

This module is a composition root: it may import the broker, unlike the rest of the SDK, which
only speaks the wire protocols.

It configures no logging, as a library should not: the broker's lines go to structlog if your
program configured structlog, else to the standard library's ``dualmq.broker...`` /
``dualmq.modes...`` loggers, which print nothing until your program configures ``logging``.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from broker.config import BrokerConfig
from dualmq.daemon import run_broker


@attrs.frozen
class EmbeddedBroker:
    """Where an embedded broker listens, and the config it runs with."""

    kafka: str
    resp: str
    config: BrokerConfig
    # The HTTP listener (/metrics, the dashboard) when ``http={"listen": ...}`` asked for one.
    http: str = ""

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir


def _section(config: Any, changes: dict[str, Any]) -> Any:
    return attrs.evolve(config, **changes) if changes else config


@asynccontextmanager
async def broker(
    data_dir: str | Path | None = None,
    *,
    config: BrokerConfig | None = None,
    log: dict[str, Any] | None = None,
    kafka: dict[str, Any] | None = None,
    resp: dict[str, Any] | None = None,
    http: dict[str, Any] | None = None,
    **top_level: Any,
) -> AsyncIterator[EmbeddedBroker]:
    """Run a broker for the duration of the ``async with`` block.

    Args:
        data_dir: where the log lives; a fresh temporary directory (deleted afterwards) if None.
        config: a full config to start from (its listen addresses are replaced by port 0).
        log, kafka, resp: overrides for those config sections, e.g. ``log={"fsync": "always"}``,
            ``resp={"pubsub_hard_limit": 1 << 20}``.
        http: the HTTP listener's section, e.g. ``http={"listen": "127.0.0.1:0"}`` for
            ``/metrics`` and the dashboard (off by default).
        **top_level: overrides of top-level keys, e.g. ``maintenance_interval_ms=100``.

    Yields:
        EmbeddedBroker with the ``HOST:PORT`` addresses of both listeners.

    Raises:
        broker.errors.ConfigError: an override is out of range.
        broker.errors.DataDirError: the data dir is unusable or in use by another broker.
    """
    with tempfile.TemporaryDirectory(prefix="dualmq-embedded-") as scratch:
        base = config or BrokerConfig()
        effective = attrs.evolve(
            base,
            data_dir=Path(data_dir) if data_dir is not None else Path(scratch) / "data",
            log=_section(base.log, log or {}),
            kafka=attrs.evolve(_section(base.kafka, kafka or {}), listen="127.0.0.1:0"),
            resp=attrs.evolve(_section(base.resp, resp or {}), listen="127.0.0.1:0"),
            http=_section(base.http, http or {}),
            **top_level,
        )
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(functools.partial(run_broker, effective))
            try:
                yield EmbeddedBroker(kafka=addresses.kafka, resp=addresses.resp, config=effective,
                                     http=addresses.http)
            finally:
                nursery.cancel_scope.cancel()
