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
* ``cluster`` (``--cluster N``): etcd (``dualmq.etcd_process``) and N ``dualmq serve --cluster``
  brokers (``BrokerCluster``) in a scratch dir, each with ``[cluster] lease_ttl_seconds`` 2
  (unless the workload says otherwise), so a killed broker is noticed within 2 s. Pull mode's
  clients bootstrap on every broker and its topic gets replication factor min(3, N) and
  ``min.insync.replicas`` min(2, factor); push mode's publisher is on the last node and the
  subscribers are spread over every node (``resp_nodes``). A ``kill``/``restart`` event stops
  one node (``victim``, chosen by each side: the partition's leader for pull, the first
  subscriber's node for push) and starts it again after ``down_s``; the consumers do not wait
  for it, they fail over to the other nodes. ``external`` with ``--cluster N`` takes
  comma-separated ``--kafka``/``--resp`` lists the same way, and kills nothing.

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
from dualmq.etcd_process import EtcdProcess
from dualmq.process import BrokerCluster, BrokerProcess

CLUSTER_LEASE_TTL_S = 2     # [cluster] lease_ttl_seconds of a cluster compare starts
MIN_KILL_NODES = 3          # a node killed under acks=all and min.insync.replicas=2 leaves two


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
    """The broker one scenario runs against; ``restartable`` tells whether events can kill it.

    ``cluster_size`` is 0 for one broker, else the number of nodes (``--cluster N``); the
    cluster-only attributes then say how the sides use them (see the module docstring).
    """

    def __init__(self, kind: str, kafka: str | None, resp: str | None, settings: dict[str, dict[str, Any]],
                 process: BrokerProcess | None = None, security: ClientSecurity | None = None,
                 http: str = "", cluster_size: int = 0) -> None:
        self.kind = kind
        self.cluster_size = cluster_size
        # The node a kill/restart event stops (cluster only; the side running sets it).
        self.victim: int | None = None
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
    def resp_nodes(self) -> list[str]:
        """Every node's RESP address; subscriber ``i`` starts on node ``i`` modulo their number
        and moves to the next one when it loses its connection. One broker: just ``resp``."""
        return [a.strip() for a in (self.resp or "").split(",") if a.strip()]

    @property
    def publisher_resp(self) -> str | None:
        """Where push mode's publishers (and its INFO reads) go: the last node."""
        nodes = self.resp_nodes
        return nodes[-1] if nodes else None

    @property
    def replication_factor(self) -> int:
        """Pull mode's topic: -1 (the broker's default) on one broker, min(3, N) on a cluster."""
        return min(3, self.cluster_size) if self.cluster_size else -1

    @property
    def topic_config(self) -> dict[str, str]:
        """Pull mode's topic configs: ``min.insync.replicas`` min(2, factor) on a cluster."""
        return {"min.insync.replicas": str(min(2, self.replication_factor))} if self.cluster_size else {}

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

    @property
    def stopped_name(self) -> str:
        """What a kill/restart event stops, in the report's words: "broker" or "broker node N"."""
        return f"broker node {self.victim}" if self.cluster_size else "broker"

    def describe_stop(self, kill: bool) -> str:
        """What a kill/restart event does, in the words the report uses (starts with "broker")."""
        return f"{self.stopped_name} {'killed with SIGKILL' if kill else 'restarted with SIGTERM'}"


class ClusterHandle(BrokerHandle):
    """N brokers on one etcd, all started by compare (``kind`` "cluster")."""

    def __init__(self, cluster: BrokerCluster, settings: dict[str, dict[str, Any]]) -> None:
        super().__init__("cluster", None, None, settings, cluster_size=len(cluster.brokers))
        self.cluster = cluster

    @property
    def kafka(self) -> str:
        # Every node, the killed one included: it comes back on the same port.
        return ",".join(b.kafka_address for b in self.cluster.brokers)

    @property
    def resp(self) -> str:
        return ",".join(b.resp_address for b in self.cluster.brokers)

    @property
    def restartable(self) -> bool:
        return True

    async def bounce(self, *, kill: bool, down_s: float) -> None:
        """Stop the ``victim`` node (SIGKILL or SIGTERM), keep it down ``down_s``, start it again."""
        if self.victim is None:
            raise RuntimeError("no node chosen to stop")
        node = self.cluster.node(self.victim)
        await node.stop_async(signal.SIGKILL if kill else signal.SIGTERM)
        await trio.sleep(down_s)
        # Back on its ports and data dir; it registers again once its old lease expired.
        await node.start_async()


@asynccontextmanager
async def open_broker(kind: str, settings: dict[str, dict[str, Any]], *, kafka: str | None = None,
                      resp: str | None = None, verbose: bool = False,
                      security: ClientSecurity | None = None, dashboard: bool = False, cluster: int = 0):
    """Yield a ``BrokerHandle`` of ``kind`` embedded | subprocess | external | cluster; clean up after.

    Args:
        kind: see the module docstring.
        settings: broker config sections (ignored for ``external``).
        kafka, resp: the addresses for ``external`` (either may be None: that mode is skipped).
        verbose: a subprocess broker logs at info level, in console format (``--verbose`` shows
            its log file); otherwise warnings and errors only.
        security: how the clients log in to the external broker (TLS, SASL, AUTH).
        dashboard: the broker also serves the live dashboard and ``/metrics`` on a free port,
            and its address is printed once it is up (``--dashboard``; not for ``external``).
        cluster: the number of nodes (``--cluster N``): for ``cluster``, how many brokers to
            start; for ``external``, how many the comma-separated addresses name. 0: one broker.

    Raises:
        AccessDenied: an external broker refused the clients' login, or could not be spoken to
            with these settings (``security.check_login``).
        EtcdStartError, BrokerStartError: etcd or a broker of the cluster did not start.
    """
    if kind == "external":
        security = security or ClientSecurity()
        await check_login(security, kafka and kafka.split(",")[0], resp and resp.split(",")[0])
        yield BrokerHandle("external", kafka, resp, {}, security=security, cluster_size=cluster)
        return
    if kind == "cluster":
        async with open_cluster(cluster, settings, verbose=verbose) as handle:
            yield handle
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


@asynccontextmanager
async def open_cluster(count: int, settings: dict[str, dict[str, Any]], *, verbose: bool = False):
    """Start etcd and ``count`` brokers in a scratch dir; yield their ``ClusterHandle``; stop all.

    Raises:
        EtcdStartError: etcd is not installed or did not start.
        BrokerStartError: a broker did not start (its log is quoted).
    """
    settings = {**settings, "cluster": {"lease_ttl_seconds": CLUSTER_LEASE_TTL_S, **settings.get("cluster", {})}}
    with tempfile.TemporaryDirectory(prefix="dualmq-compare-cluster-") as scratch:
        workdir = Path(scratch)
        config = workdir / "broker.toml"
        config.write_text(config_toml(settings))
        console = ("--log-format", "console") if verbose else ()
        etcd = EtcdProcess(workdir / "etcd")
        cluster: BrokerCluster | None = None
        try:
            await trio.to_thread.run_sync(etcd.start)   # a second or so; etcd's ports are known after
            cluster = BrokerCluster(workdir, etcd.endpoint, count, "--config", str(config), *console)
            for broker in cluster.brokers:
                broker.log_level = "info" if verbose else "warning"
            await trio.to_thread.run_sync(cluster.start)
            yield ClusterHandle(cluster, settings)
        finally:
            with trio.CancelScope(shield=True):
                if cluster is not None:
                    await trio.to_thread.run_sync(cluster.stop)
                await trio.to_thread.run_sync(etcd.stop)


def _announce_dashboard(handle: BrokerHandle) -> None:
    """Print where the live dashboard is, when the broker serves one (``compare --dashboard``)."""
    if handle.http:
        print(f"dashboard: http://{handle.http}/  (metrics: http://{handle.http}/metrics)", file=sys.stderr,
              flush=True)


def cpu_count() -> int:
    return os.cpu_count() or 1
