"""``dualmq compare --cluster N``: a scenario on N brokers coordinated on etcd.

* ``--cluster 3 broker-kill``: compare starts etcd and three brokers, kills the leader of pull
  mode's partition a quarter of the way in, and reports what it kept: with replication factor
  3, acks=all and min.insync.replicas=2 no acknowledged record is lost, and the consumers'
  longest delivery gap is measured. (Push mode's side of it is lesson 13's test.)
* ``--cluster 3`` with ``--kafka``/``--resp`` lists: a cluster the test started; kafka-python
  then sees the topic compare made replicated on all three brokers, and push mode's subscriber
  on node 1 gets what the publisher on node 3 published once it had joined (forwarding).
* What cannot run is refused before anything starts, in one line.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from dualmq.compare import command
from dualmq.process import BrokerCluster
from tests.compare.test_external import _run
from tests.interop.cluster_support import kafka  # noqa: F401  (a fixture)
from tests.support import KAFKA_PYTHON_NOISE, etcd_process, require_binary

@pytest.mark.parametrize(("argv", "expected"), [
    (["--cluster", "1", "broker-kill"], "it needs --cluster 3 or more"),
    (["--cluster", "2", "broker-restart"], "it needs --cluster 3 or more"),
    (["--cluster", "0", "late-joiner"], "--cluster 0: the number of brokers to run, at least 1"),
    (["--cluster", "-2"], "--cluster -2: the number of brokers to run, at least 1"),
    (["--cluster", "3", "fan-out"], "--cluster runs the in-process scenarios only"),
    (["--cluster", "3", "baseline"], "baseline measure one broker"),
    (["--cluster", "3", "broker-kill", "--kafka", "127.0.0.1:1,127.0.0.1:2"], "drop --kafka/--resp"),
    (["--cluster", "3", "late-joiner", "--dashboard"], "--dashboard is served by one broker"),
])
def test_what_cannot_run_on_a_cluster_is_refused_before_anything_starts(argv, expected, capsys):
    assert _run(*argv) == command.EXIT_USAGE
    captured = capsys.readouterr()
    assert expected in captured.err and captured.err.count("\n") == 1, captured.err
    assert "running" not in captured.err and captured.out == ""


def test_without_etcd_the_cluster_is_refused_saying_what_to_install(capsys, monkeypatch):
    monkeypatch.setattr(command, "find_etcd", lambda: None)
    assert _run("--cluster", "3", "broker-kill") == command.EXIT_FAILURE
    err = capsys.readouterr().err
    assert "--cluster needs etcd" in err and "etcd-server" in err and "running" not in err, err


@pytest.mark.timeout(90)
def test_broker_kill_on_three_brokers_loses_no_acknowledged_record_and_measures_the_gap(tmp_path, capsys):
    require_binary("etcd", "etcd-server")
    out = tmp_path / "cluster.json"
    # --cluster alone runs broker-kill. Pull mode only: the lesson (examples/13) runs both, and
    # each mode keeps its killed node down 5 s.
    assert _run("--cluster", "3", "--modes", "pull", "--messages", "1200", "--consumers", "3",
                "--json", str(out)) == 0
    text = capsys.readouterr().out
    assert "== broker-kill: on a cluster" in text and "broker cluster of 3 nodes" in text, text
    (scenario,) = json.loads(out.read_text())["scenarios"]
    assert scenario["broker"]["kind"] == "cluster" and scenario["broker"]["cluster"] == 3
    assert len(scenario["broker"]["kafka"].split(",")) == len(scenario["broker"]["resp"].split(",")) == 3
    pull = scenario["modes"]["pull"]
    # The partition's leader was killed; every acknowledged record reached every consumer.
    [killed] = [what for _, what in pull["incidents"] if "killed with SIGKILL" in what]
    assert re.fullmatch(r"broker node [123] killed with SIGKILL \(leader of partition 0\), replication factor 3, "
                        r"min.insync.replicas=2", killed), killed
    assert f"broker node {killed.split()[2]} back after SIGKILL" in [what for _, what in pull["incidents"]]
    assert pull["guarantees"]["replication"].startswith("factor 3, min.insync.replicas=2, over 3 brokers")
    assert pull["sent"] == 1200 and pull["acknowledged"] > 0
    assert pull["lost"] == 0, pull["lost_reasons"]
    for consumer in pull["consumers"]:
        assert consumer["delivered"] >= pull["acknowledged"], consumer
        assert consumer["cut_off_ms"] == 0
    # The gap is measured and finite: the partition had no leader for a while. Another replica
    # took it over before the killed leader came back (5 s later): the clients failed over.
    assert math.isfinite(pull["longest_gap_ms"]) and 0 < pull["longest_gap_ms"] < 5_000, pull["longest_gap_ms"]
    assert pull["longest_gap_ms"] == max(c["longest_gap_ms"] for c in pull["consumers"])


@pytest.mark.timeout(90)
def test_given_cluster_addresses_the_topic_is_replicated_on_all_three_as_kafka_python_sees_it(
        kafka, tmp_path, capsys):  # noqa: F811  (fixture)
    with etcd_process(tmp_path) as etcd, BrokerCluster(tmp_path, etcd.endpoint, 3) as cluster:
        out = tmp_path / "external.json"
        resp = ",".join(b.resp_address for b in cluster.brokers)
        status = _run("late-joiner", "--cluster", "3", "--kafka", cluster.bootstrap, "--resp", resp,
                      "--messages", "400", "--json", str(out))
        assert status == 0, capsys.readouterr().err
        (scenario,) = json.loads(out.read_text())["scenarios"]
        topic = scenario["modes"]["pull"]["guarantees"]["topic"].split(",")[0]
        admin = kafka.KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=10000)
        try:
            [described] = admin.describe_topics([topic])
        finally:
            admin.close()
    assert scenario["broker"]["kind"] == "external" and scenario["broker"]["cluster"] == 3
    [partition] = described["partitions"]
    assert sorted(partition["replica_nodes"]) == sorted(partition["isr_nodes"]) == [1, 2, 3], partition
    pull, push = scenario["modes"]["pull"], scenario["modes"]["push"]
    assert pull["delivered"] == pull["acknowledged"] == 400 and pull["lost"] == 0
    # Push: published on node 3, forwarded to the subscriber on node 1 once it joined halfway.
    assert push["acknowledged"] == 400 and push["lost"] == 0, push["lost_reasons"]
    assert push["delivered"] + push["not_promised"] == 400 and push["delivered"] >= 150, push
    assert set(push["not_promised_reasons"]) == {"no subscriber at publish time (not subscribed yet)"}


pytestmark = [*KAFKA_PYTHON_NOISE]
