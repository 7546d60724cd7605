"""Each permission boundary of the Kafka authorizer, denied then allowed, on the wire.

Alice (no ACLs yet) sends a request and must get exactly the error Kafka gives; the admin (a
super user) then grants the one ACL the request needs, through CreateAcls, and the same request
must now pass that check. Every row of ``BOUNDARIES`` is one boundary; real clients meet the same
rules in ``tests/interop/test_kafka_security.py``.
"""

from __future__ import annotations

import uuid

import pytest

from broker.security.authorizer import Operation, PatternType, Permission, ResourceType
from tests.modes.pull.raw import pull_broker
from tests.modes.pull.test_sasl import authenticate_plain
from tests.modes.pull.test_golden import ONE_RECORD_BATCH
from wire.kafka.errors import ErrorCode

USERS = ({"name": "alice", "password": "alice-pw"}, {"name": "admin", "password": "admin-pw"})
TOPIC, GROUP, CLUSTER = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER


def secured(tmp_path, **kafka):
    return pull_broker(tmp_path, security_protocol="SASL_PLAINTEXT", users=USERS, authorizer=True,
                       super_users=["User:admin"], group_initial_rebalance_delay_ms=0, **kafka)


async def login(broker, user):
    client = await broker.connect()
    answer = await authenticate_plain(client, password=f"{user}-pw") if user == "alice" else None
    if user == "admin":
        await client.call(17, 1, {"mechanism": "PLAIN"})
        answer = await client.call(36, 2, {"auth_bytes": b"\x00admin\x00admin-pw"})
    assert answer["error_code"] == ErrorCode.NONE
    return client


async def grant(admin, resource_type, name, operation, *, pattern=PatternType.LITERAL,
                permission=Permission.ALLOW, principal="User:alice"):
    answer = await admin.call(30, 2, {"creations": [{
        "resource_type": resource_type, "resource_name": name, "resource_pattern_type": pattern,
        "principal": principal, "host": "*", "operation": operation, "permission_type": permission}]})
    assert answer["results"] == [{"error_code": ErrorCode.NONE, "error_message": None}]


def partition_code(response, topics="responses", partitions="partition_responses"):
    return response[topics][0][partitions][0]["error_code"]


# (name, api key, version, request, the ACL that opens it, how to read the code, denied code[, an
# ACL granted before the denied call, when the boundary lies behind another one])
BOUNDARIES = [
    ("produce", 0, 9, {"acks": -1, "timeout_ms": 1000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": ONE_RECORD_BATCH}]}]},
     (TOPIC, "t", Operation.WRITE), partition_code, ErrorCode.TOPIC_AUTHORIZATION_FAILED),
    ("fetch", 1, 12, {"max_wait_ms": 0, "max_bytes": 1000, "topics": [
        {"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1000}]}]},
     (TOPIC, "t", Operation.READ), lambda r: partition_code(r, "responses", "partitions"),
     ErrorCode.TOPIC_AUTHORIZATION_FAILED),
    ("list offsets", 2, 7, {"replica_id": -1, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "timestamp": -1}]}]},
     (TOPIC, "t", Operation.DESCRIBE), lambda r: partition_code(r, "topics", "partitions"),
     ErrorCode.TOPIC_AUTHORIZATION_FAILED),
    ("metadata, named topic", 3, 9, {"topics": [{"name": "t"}], "allow_auto_topic_creation": False},
     (TOPIC, "t", Operation.DESCRIBE), lambda r: r["topics"][0]["error_code"],
     ErrorCode.TOPIC_AUTHORIZATION_FAILED),
    ("metadata, auto-creation", 3, 9, {"topics": [{"name": "fresh"}], "allow_auto_topic_creation": True},
     (TOPIC, "fresh", Operation.CREATE), lambda r: r["topics"][0]["error_code"],
     ErrorCode.TOPIC_AUTHORIZATION_FAILED, (TOPIC, "fresh", Operation.DESCRIBE)),
    ("find coordinator", 10, 3, {"key": "g", "key_type": 0},
     (GROUP, "g", Operation.DESCRIBE), lambda r: r["error_code"], ErrorCode.GROUP_AUTHORIZATION_FAILED),
    ("join group", 11, 7, {"group_id": "g", "session_timeout_ms": 6000, "rebalance_timeout_ms": 5000,
                           "member_id": "", "protocol_type": "consumer",
                           "protocols": [{"name": "range", "metadata": b""}]},
     (GROUP, "g", Operation.READ), lambda r: r["error_code"], ErrorCode.GROUP_AUTHORIZATION_FAILED),
    ("heartbeat", 12, 4, {"group_id": "g", "generation_id": 1, "member_id": "m"},
     (GROUP, "g", Operation.READ), lambda r: r["error_code"], ErrorCode.GROUP_AUTHORIZATION_FAILED),
    ("leave group", 13, 4, {"group_id": "g", "members": [{"member_id": "m"}]},
     (GROUP, "g", Operation.READ), lambda r: r["error_code"], ErrorCode.GROUP_AUTHORIZATION_FAILED),
    ("sync group", 14, 4, {"group_id": "g", "generation_id": 1, "member_id": "m", "assignments": []},
     (GROUP, "g", Operation.READ), lambda r: r["error_code"], ErrorCode.GROUP_AUTHORIZATION_FAILED),
    ("offset commit, group", 8, 8, {"group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "",
                                    "topics": [{"name": "t", "partitions": [
                                        {"partition_index": 0, "committed_offset": 0}]}]},
     (GROUP, "g", Operation.READ), lambda r: partition_code(r, "topics", "partitions"),
     ErrorCode.GROUP_AUTHORIZATION_FAILED),
    ("offset fetch", 9, 7, {"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]},
     (GROUP, "g", Operation.DESCRIBE), lambda r: r["error_code"], ErrorCode.GROUP_AUTHORIZATION_FAILED),
    ("describe groups", 15, 5, {"groups": ["g"]},
     (GROUP, "g", Operation.DESCRIBE), lambda r: r["groups"][0]["error_code"],
     ErrorCode.GROUP_AUTHORIZATION_FAILED),
    ("delete groups", 42, 2, {"groups_names": ["g"]},
     (GROUP, "g", Operation.DELETE), lambda r: r["results"][0]["error_code"],
     ErrorCode.GROUP_AUTHORIZATION_FAILED),
    ("create topics", 19, 5, {"topics": [{"name": "made", "num_partitions": 1, "replication_factor": 1}]},
     (TOPIC, "made", Operation.CREATE), lambda r: r["topics"][0]["error_code"],
     ErrorCode.TOPIC_AUTHORIZATION_FAILED),
    ("delete topics", 20, 5, {"topic_names": ["t"], "timeout_ms": 1000},
     (TOPIC, "t", Operation.DELETE), lambda r: r["responses"][0]["error_code"],
     ErrorCode.TOPIC_AUTHORIZATION_FAILED),
    ("create partitions", 37, 2, {"topics": [{"name": "t", "count": 2}], "timeout_ms": 1000},
     (TOPIC, "t", Operation.ALTER), lambda r: r["results"][0]["error_code"],
     ErrorCode.TOPIC_AUTHORIZATION_FAILED),
    ("describe configs, topic", 32, 4, {"resources": [{"resource_type": 2, "resource_name": "t"}]},
     (TOPIC, "t", Operation.DESCRIBE_CONFIGS), lambda r: r["results"][0]["error_code"],
     ErrorCode.TOPIC_AUTHORIZATION_FAILED),
    ("describe configs, broker", 32, 4, {"resources": [{"resource_type": 4, "resource_name": "0"}]},
     (CLUSTER, "kafka-cluster", Operation.DESCRIBE_CONFIGS), lambda r: r["results"][0]["error_code"],
     ErrorCode.CLUSTER_AUTHORIZATION_FAILED),
    ("init producer id", 22, 4, {"transactional_id": None, "transaction_timeout_ms": 1000},
     (CLUSTER, "kafka-cluster", Operation.IDEMPOTENT_WRITE), lambda r: r["error_code"],
     ErrorCode.CLUSTER_AUTHORIZATION_FAILED),
    ("describe acls", 29, 2, {"resource_type_filter": 1, "pattern_type_filter": 1, "operation": 1,
                              "permission_type": 1},
     (CLUSTER, "kafka-cluster", Operation.DESCRIBE), lambda r: r["error_code"],
     ErrorCode.CLUSTER_AUTHORIZATION_FAILED),
    ("create acls", 30, 2, {"creations": [{"resource_type": 2, "resource_name": "x", "resource_pattern_type": 3,
                                           "principal": "User:bob", "host": "*", "operation": 3,
                                           "permission_type": 3}]},
     (CLUSTER, "kafka-cluster", Operation.ALTER), lambda r: r["results"][0]["error_code"],
     ErrorCode.CLUSTER_AUTHORIZATION_FAILED),
    ("delete acls", 31, 2, {"filters": [{"resource_type_filter": 2, "pattern_type_filter": 1, "operation": 1,
                                         "permission_type": 1}]},
     (CLUSTER, "kafka-cluster", Operation.ALTER), lambda r: r["filter_results"][0]["error_code"],
     ErrorCode.CLUSTER_AUTHORIZATION_FAILED),
]


@pytest.mark.parametrize("row", BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
async def test_boundary_denied_without_the_acl_and_passed_with_it(tmp_path, row):
    _, key, version, request, acl, code, denied, *before = row
    async with secured(tmp_path) as broker:
        admin = await login(broker, "admin")
        created = await admin.call(19, 5, {"topics": [{"name": "t", "num_partitions": 1, "replication_factor": 1}]})
        assert created["topics"][0]["error_code"] == ErrorCode.NONE
        for earlier in before:
            await grant(admin, *earlier)
        alice = await login(broker, "alice")
        assert code(await alice.call(key, version, request)) == denied
        await grant(admin, *acl)
        assert code(await alice.call(key, version, request)) != denied


async def test_metadata_for_all_topics_hides_the_undescribable_and_deny_wins(tmp_path):
    async with secured(tmp_path) as broker:
        admin = await login(broker, "admin")
        await admin.call(19, 5, {"topics": [{"name": n, "num_partitions": 1, "replication_factor": 1}
                                            for n in ("pay-eu", "pay-us", "secret")]})
        await grant(admin, TOPIC, "pay-", Operation.READ, pattern=PatternType.PREFIXED)
        await grant(admin, TOPIC, "pay-us", Operation.ALL, permission=Permission.DENY)
        alice = await login(broker, "alice")
        listed = await alice.call(3, 9, {"topics": None, "allow_auto_topic_creation": False})
        assert [t["name"] for t in listed["topics"]] == ["pay-eu"]
        everything = await admin.call(3, 9, {"topics": None, "allow_auto_topic_creation": False})
        assert sorted(t["name"] for t in everything["topics"]) == ["pay-eu", "pay-us", "secret"]


async def test_acl_apis_describe_and_delete_what_was_created_and_persist(tmp_path):
    async with secured(tmp_path) as broker:
        admin = await login(broker, "admin")
        await grant(admin, TOPIC, "orders-", Operation.WRITE, pattern=PatternType.PREFIXED)
        bad = await admin.call(30, 2, {"creations": [{"resource_type": 2, "resource_name": "x",
                                                      "resource_pattern_type": 2, "principal": "User:bob",
                                                      "host": "*", "operation": 3, "permission_type": 3}]})
        assert bad["results"][0]["error_code"] == ErrorCode.INVALID_REQUEST
        listed = await admin.call(29, 2, {"resource_type_filter": 1, "pattern_type_filter": 1, "operation": 1,
                                          "permission_type": 1})
        assert listed["resources"] == [{"resource_type": 2, "resource_name": "orders-", "pattern_type": 4,
                                        "acls": [{"principal": "User:alice", "host": "*", "operation": 4,
                                                  "permission_type": 3}]}]
    async with secured(tmp_path) as broker:  # same data dir: the ACL is still there
        admin = await login(broker, "admin")
        removed = await admin.call(31, 2, {"filters": [{"resource_type_filter": 2, "pattern_type_filter": 1,
                                                        "operation": 1, "permission_type": 1}]})
        assert [a["resource_name"] for a in removed["filter_results"][0]["matching_acls"]] == ["orders-"]


async def test_acl_apis_say_security_disabled_without_an_authorizer(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        answer = await client.call(29, 2, {"resource_type_filter": 1, "pattern_type_filter": 1, "operation": 1,
                                           "permission_type": 1})
        assert answer["error_code"] == ErrorCode.SECURITY_DISABLED


async def test_metadata_by_topic_id_checks_describe_on_the_topic_it_names(tmp_path):
    # Metadata v12 may name a topic by its id alone: the DESCRIBE check applies to the topic
    # the id resolves to, and a denied client gets Kafka's answer (the id back, no name, no
    # partitions), never the topic's name or layout.
    async with secured(tmp_path) as broker:
        admin = await login(broker, "admin")
        await admin.call(19, 5, {"topics": [{"name": "secret", "num_partitions": 3, "replication_factor": 1}]})
        listed = await admin.call(3, 12, {"topics": [{"name": "secret", "topic_id": uuid.UUID(int=0)}],
                                          "allow_auto_topic_creation": False})
        topic_id = listed["topics"][0]["topic_id"]
        by_id = {"topics": [{"name": None, "topic_id": topic_id}], "allow_auto_topic_creation": False}
        alice = await login(broker, "alice")
        [denied] = (await alice.call(3, 12, by_id))["topics"]
        assert denied["error_code"] == ErrorCode.TOPIC_AUTHORIZATION_FAILED
        assert denied["name"] is None and denied["topic_id"] == topic_id and not denied["partitions"]
        await grant(admin, TOPIC, "secret", Operation.DESCRIBE)
        [allowed] = (await alice.call(3, 12, by_id))["topics"]
        assert (allowed["error_code"], allowed["name"], len(allowed["partitions"])) == (ErrorCode.NONE, "secret", 3)
