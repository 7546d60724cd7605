"""``dualmq produce | consume | topics | groups`` against a running broker, over the Kafka protocol."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import broker_process, fast_groups_broker


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    with fast_groups_broker(tmp_path_factory.mktemp("cli-pull")) as broker:
        yield broker.kafka_address


def partition_rows(described: str) -> list[list[str]]:
    """The rows of ``topics describe``'s partition table (the configs table follows a blank line)."""
    table = described.split("\n\n")[0]
    return [line.split() for line in table.splitlines()[1:]]


def config_rows(described: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``topics describe``'s configs table: (topic, config) -> (value, source)."""
    table = described.split("\n\n")[1]
    rows = {}
    for line in table.splitlines()[1:]:
        topic, name, value, source = line.split(maxsplit=3)
        rows[(topic, name)] = (value, source)
    return rows


def dualmq(*args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualmq", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout)


def test_topic_lifecycle(kafka) -> None:
    created = dualmq("topics", "create", "--kafka", kafka, "lifecycle", "--partitions", "3",
                     "--config", "retention.ms=60000")
    assert created.returncode == 0, created.stderr
    assert "lifecycle" in dualmq("topics", "list", "--kafka", kafka).stdout.split()
    described = dualmq("topics", "describe", "--kafka", kafka, "lifecycle")
    assert described.returncode == 0, described.stderr
    assert [row[1] for row in partition_rows(described.stdout)] == ["0", "1", "2"]
    # The topic's settings, from DescribeConfigs, with where each comes from.
    configs = config_rows(described.stdout)
    assert configs[("lifecycle", "retention.ms")] == ("60000", "topic")
    assert configs[("lifecycle", "segment.bytes")] == ("1073741824", "default")
    assert {name for _, name in configs} >= {"cleanup.policy", "retention.bytes", "max.message.bytes"}
    again = dualmq("topics", "create", "--kafka", kafka, "lifecycle")
    assert again.returncode == 1 and "TOPIC_ALREADY_EXISTS" in again.stderr
    # One broker holds one copy: a factor of 3 is refused, in one line (a cluster accepts it:
    # tests/examples/test_readme_cluster.py).
    copies = dualmq("topics", "create", "--kafka", kafka, "copies", "--replication-factor", "3")
    assert copies.returncode == 1 and copies.stderr.startswith("dualmq: error: INVALID_REPLICATION_FACTOR"), \
        copies.stderr
    assert "min.insync.replicas" in {name for _, name in configs}
    grown = dualmq("topics", "alter", "--kafka", kafka, "lifecycle", "--partitions", "5")
    assert grown.returncode == 0 and "now has 5 partitions" in grown.stdout, grown.stderr
    described = dualmq("topics", "describe", "--kafka", kafka, "lifecycle")
    assert [row[1] for row in partition_rows(described.stdout)] == ["0", "1", "2", "3", "4"]
    shrink = dualmq("topics", "alter", "--kafka", kafka, "lifecycle", "--partitions", "2")
    assert shrink.returncode == 1 and shrink.stderr.startswith("dualmq: error: INVALID_PARTITIONS")
    assert "Traceback" not in shrink.stderr and len(shrink.stderr.strip().splitlines()) == 1
    assert dualmq("topics", "delete", "--kafka", kafka, "lifecycle").returncode == 0
    assert "lifecycle" not in dualmq("topics", "list", "--kafka", kafka).stdout.split()


def test_produce_then_consume_from_beginning(kafka) -> None:
    produced = dualmq("produce", "--kafka", kafka, "lines", "--key", "k", "--partitions", "2",
                      stdin="one\ntwo\nthree\n")
    assert produced.returncode == 0, produced.stderr
    assert "produced 3 records to lines" in produced.stderr
    consumed = dualmq("consume", "--kafka", kafka, "lines", "--from-beginning", "--max", "3",
                      "--format", r"%p\t%o\t%k\t%s\n")
    assert consumed.returncode == 0, consumed.stderr
    rows = [line.split("\t") for line in consumed.stdout.splitlines()]
    # One key: one partition, so the order is the order produced.
    assert [(r[2], r[3]) for r in rows] == [("k", "one"), ("k", "two"), ("k", "three")]
    assert len({r[0] for r in rows}) == 1


def test_group_consume_commits_and_describe_shows_lag(kafka) -> None:
    assert dualmq("produce", "--kafka", kafka, "lagging", stdin="a\nb\nc\nd\ne\n").returncode == 0
    consumed = dualmq("consume", "--kafka", kafka, "lagging", "--group", "readers", "--from-beginning",
                      "--max", "2")
    assert consumed.returncode == 0, consumed.stderr
    assert len(consumed.stdout.splitlines()) == 2
    listed = dualmq("groups", "list", "--kafka", kafka)
    assert "readers" in listed.stdout
    described = dualmq("groups", "describe", "--kafka", kafka, "readers")
    assert described.returncode == 0, described.stderr
    assert "total lag 3" in described.stdout
    row = next(line.split() for line in described.stdout.splitlines() if line.startswith("lagging"))
    assert row[1:5] == ["0", "2", "5", "3"]  # partition, committed, log end, lag
    # The group resumes from its commit.
    resumed = dualmq("consume", "--kafka", kafka, "lagging", "--group", "readers", "--max", "3")
    assert resumed.stdout.splitlines() == ["c", "d", "e"]  # piped: values only
    # With no member left, the group and its commits can be deleted; a second time it is gone.
    deleted = dualmq("groups", "delete", "--kafka", kafka, "readers")
    assert deleted.returncode == 0 and "deleted group readers" in deleted.stdout, deleted.stderr
    assert "readers" not in dualmq("groups", "list", "--kafka", kafka).stdout
    again = dualmq("groups", "delete", "--kafka", kafka, "readers")
    assert again.returncode == 1 and again.stderr.startswith("dualmq: error: GROUP_ID_NOT_FOUND")


def test_unknown_topic_and_unreachable_broker_are_one_line_errors(kafka) -> None:
    result = dualmq("consume", "--kafka", kafka, "no-such-topic", "--max", "1")
    assert result.returncode == 1
    assert result.stderr.strip() == "dualmq: error: UNKNOWN_TOPIC_OR_PARTITION: 'no-such-topic'"
    unreachable = dualmq("topics", "list", "--kafka", "127.0.0.1:1", timeout=90)
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("dualmq: error:") and "Traceback" not in unreachable.stderr


def test_idle_exit_counts_from_when_the_group_consumer_is_ready(tmp_path) -> None:
    # Regression: the idle timer ran during the group join, which waits 3 s for more members
    # (group_initial_rebalance_delay_ms, Kafka's default too), so --idle-exit 1 printed
    # nothing and exited 0 on a topic full of records.
    with broker_process(tmp_path) as broker:  # default config: the 3 s join delay
        kafka = broker.kafka_address
        assert dualmq("produce", "--kafka", kafka, "patient", stdin="a\nb\nc\n").returncode == 0
        consumed = dualmq("consume", "--kafka", kafka, "patient", "--group", "slow-join", "--from-beginning",
                          "--idle-exit", "1")
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.splitlines() == ["a", "b", "c"]
