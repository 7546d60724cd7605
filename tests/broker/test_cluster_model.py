"""The pure cluster model (``broker.cluster``): Kafka's round-robin replica assignment, the values
kept in etcd, and a broker's view built from them - including values that are not ours."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.cluster import (
    BrokerInfo, ClusterDataInvalid, ClusterView, InvalidReplicationFactor, TopicAssignment, assign_replicas,
)
from broker.cluster.model import CONTROLLER, broker_key, controller_value, create_request_key, topic_key

TOPIC_ID = bytes(range(1, 17))


def test_assignment_follows_kafkas_round_robin() -> None:
    # Kafka's documented example shape: 5 brokers, 10 partitions, RF 3, start 0, shift 0.
    got = assign_replicas([4, 2, 0, 3, 1], 10, 3, start=0, shift=0)
    assert got[:5] == [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 1]]
    # After a full round the followers shift by one more.
    assert got[5:] == [[0, 2, 3], [1, 3, 4], [2, 4, 0], [3, 0, 1], [4, 1, 2]]
    assert assign_replicas([1, 2, 3], 6, 1, start=1, shift=0) == [[2], [3], [1], [2], [3], [1]]


@given(brokers=st.sets(st.integers(0, 50), min_size=1, max_size=8), partitions=st.integers(1, 40),
       data=st.data())
def test_assignment_is_balanced_and_distinct(brokers, partitions, data) -> None:
    factor = data.draw(st.integers(1, len(brokers)))
    start, shift = data.draw(st.integers(0, 100)), data.draw(st.integers(0, 100))
    got = assign_replicas(sorted(brokers), partitions, factor, start=start, shift=shift)
    assert len(got) == partitions
    assert all(len(r) == factor == len(set(r)) and set(r) <= brokers for r in got)
    led = [r[0] for r in got]
    counts = [led.count(b) for b in brokers]
    assert max(counts) - min(counts) <= 1  # leadership spread evenly


def test_more_replicas_than_brokers_is_refused() -> None:
    with pytest.raises(InvalidReplicationFactor, match="larger than the 2 live broker"):
        assign_replicas([1, 2], 3, 3, start=0, shift=0)
    with pytest.raises(InvalidReplicationFactor):
        assign_replicas([1, 2], 3, 0, start=0, shift=0)


def test_view_follows_brokers_controller_and_topics() -> None:
    view = ClusterView()
    one = BrokerInfo(node_id=1, host="127.0.0.1", kafka_port=9092, resp_host="127.0.0.1", resp_port=6379)
    view.apply(broker_key(1), one.to_json())
    assert view.brokers == {1: one}
    view.apply(CONTROLLER, controller_value(1), create_revision=7)
    assert (view.controller, view.controller_epoch) == (1, 7)
    topic = TopicAssignment.new("t", TOPIC_ID, [[1], [2]], {"retention.ms": "1000"})
    change = view.apply(topic_key("t"), topic.to_json())
    assert change.topic == topic and TopicAssignment.from_json(topic.to_json()) == topic
    assert (view.leader("t", 0), view.leader("t", 1), view.leader("t", 2), view.leader("x", 0)) == (1, 2, None, None)
    assert view.apply(CONTROLLER, None).controller_gone and view.controller == -1
    view.apply(broker_key(1), None)
    assert view.brokers == {}
    request = view.apply(create_request_key("auto"), b'{"name":"auto","partitions":2,"replication_factor":1}')
    assert request.create_request.partitions == 2


@pytest.mark.parametrize("key, value, message", [
    (broker_key(1), b"not json", "not JSON"),
    (broker_key(1), b"[1]", "expected a JSON object"),
    (broker_key(1), b'{"node_id":2,"host":"h","kafka_port":1,"resp_host":"h","resp_port":1}', "holds node id 2"),
    (broker_key(1), b'{"node_id":1,"host":"h","kafka_port":0,"resp_host":"h","resp_port":1}', "port outside"),
    (b"/dualmq/brokers/x", b"{}", "not a node id"),
    (CONTROLLER, b'{"node_id":-3}', "not a node id"),
    (topic_key("t"), b'{"name":"t","topic_id":"zz","overrides":{},"partitions":[]}', "topic"),
    (topic_key("t"), json.dumps({"name": "t", "topic_id": TOPIC_ID.hex(), "overrides": {}, "partitions": [
        {"leader": 9, "replicas": [1], "isr": [1], "leader_epoch": 0}]}).encode(), "do not fit"),
    (topic_key("t"), json.dumps({"name": "u", "topic_id": TOPIC_ID.hex(), "overrides": {}, "partitions": [
        {"leader": 1, "replicas": [1], "isr": [1], "leader_epoch": 0}]}).encode(), "holds topic 'u'"),
    (topic_key("t"), json.dumps({"name": "t", "topic_id": TOPIC_ID.hex(), "overrides": {}, "partitions": [
        {"leader": 1, "replicas": [1, 1], "isr": [1], "leader_epoch": 0}]}).encode(), "distinct"),
])
def test_values_that_are_not_ours_are_refused_and_change_nothing(key, value, message) -> None:
    view = ClusterView()
    with pytest.raises(ClusterDataInvalid, match=message):
        view.apply(key, value)
    assert view == ClusterView()
