"""``dualmq serve``'s cluster flags and ``[cluster]`` keys: how they combine and what is refused."""

from __future__ import annotations

import subprocess
import sys

import pytest

from broker.config import BrokerConfig
from broker.errors import ConfigError
from dualmq.cli import build_parser
from dualmq.cli.serve import load_config


def test_flags_set_the_cluster_keys() -> None:
    args = build_parser().parse_args(["serve", "--node-id", "3", "--cluster", "etcd://127.0.0.1:2379,10.0.0.2:2379"])
    config = load_config(args)
    assert (config.cluster.node_id, config.cluster.endpoints) == (3, ["127.0.0.1:2379", "10.0.0.2:2379"])
    assert not BrokerConfig().cluster.enabled  # off by default: nothing changes


@pytest.mark.parametrize("raw, message", [
    ({"cluster": {"etcd": "etcd://127.0.0.1:2379"}}, "cluster.node_id is not"),
    ({"cluster": {"etcd": "http://127.0.0.1:2379", "node_id": 1}}, "expected etcd://HOST:PORT"),
    ({"cluster": {"etcd": "etcd://127.0.0.1:0", "node_id": 1}}, "port cannot be 0"),
    ({"cluster": {"etcd": "etcd://127.0.0.1:2379", "node_id": 1}, "kafka": {"node_id": 2}}, "one id"),
    ({"cluster": {"lease_ttl_seconds": 0}}, r"allowed range is \[1, 300\]"),
    ({"cluster": {"replica_lag_time_max_ms": 99}}, r"allowed range is \[100, 3600000\]"),
    ({"log": {"min_insync_replicas": 0}}, r"allowed range is \[1, "),
    ({"cluster": {"nodeid": 1}}, "unknown config key"),
    # PUBLISH is forwarded between brokers over plaintext RESP.
    ({"cluster": {"etcd": "etcd://127.0.0.1:2379", "node_id": 1}, "resp": {"tls": True},
      "tls": {"cert_file": "c.pem", "key_file": "k.pem"}}, "resp.tls = true is not supported in cluster mode"),
])
def test_bad_cluster_settings_are_refused_naming_the_key(raw, message) -> None:
    with pytest.raises(ConfigError, match=message):
        BrokerConfig.from_dict(raw)


def test_serve_with_cluster_but_no_node_id_exits_with_one_clear_line(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "dualmq", "serve", "--data-dir", str(tmp_path / "d"),
                           "--cluster", "etcd://127.0.0.1:2379", "--kafka", "127.0.0.1:0", "--resp", "127.0.0.1:0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "cluster.node_id is not" in done.stderr and "Traceback" not in done.stderr


def test_serve_with_etcd_down_exits_with_one_clear_line(tmp_path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "dualmq", "serve", "--data-dir", str(tmp_path / "d"),
                           "--node-id", "1", "--cluster", f"etcd://127.0.0.1:{port}", "--kafka", "127.0.0.1:0",
                           "--resp", "127.0.0.1:0", "--log-level", "error"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "etcd unreachable" in done.stderr and f"127.0.0.1:{port}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
