"""ClusterNode's reads of etcd (modes/cluster/node.py) against a real etcd."""

from __future__ import annotations

from structlog.testing import capture_logs

from broker.cluster.model import BrokerInfo, broker_key
from broker.config import ClusterConfig, LogConfig
from broker.topics import TopicRegistry
from dualmq.etcd_process import EtcdProcess
from modes.cluster.etcd import EtcdClient
from modes.cluster.node import ClusterNode


async def test_a_broker_key_dualmq_did_not_write_is_left_out_of_the_live_brokers(etcd: EtcdProcess, tmp_path) -> None:
    # Read when a broker (re)joins and resigns, and by the controller assigning a topic: a bad
    # value must not crash the task reading it (the lease keepalive), only be logged.
    async with EtcdClient([etcd.endpoint]) as client:
        await client.put(broker_key(1), BrokerInfo(1, "127.0.0.1", 9092, "127.0.0.1", 6379).to_json())
        await client.put(broker_key(2), b"{not json")
        node = ClusterNode(ClusterConfig(etcd=f"etcd://{etcd.endpoint}", node_id=3), client,
                           TopicRegistry.open(tmp_path, LogConfig(), now_ms=0), now_ms=lambda: 0)
        with capture_logs() as logs:
            assert await node._live_brokers() == [1]
    assert [e["key"] for e in logs if e["event"] == "cluster_value_invalid"] == ["/dualmq/brokers/2"]
