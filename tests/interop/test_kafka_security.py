"""Kafka security with clients nobody here wrote: kcat (librdkafka 2.0.2) and kafka-python.

One broker speaks SASL_SSL with the authorizer on (certificates made per run with ``openssl``,
users ``admin`` — a super user — ``alice`` and ``bob``); a second speaks SSL with required
client certificates (mTLS: the certificate's subject is the principal). Each case is allowed one
way and denied the other, and the ACLs are granted with kafka-python's admin client, so
CreateAcls and DescribeAcls are spoken by a real client too. No password may reach the log.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.certificates import make_certificates
from tests.support import KAFKA_PYTHON_NOISE, broker_process, require_binary, require_module

pytestmark = [
    pytest.mark.interop,
    *KAFKA_PYTHON_NOISE,
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
]

TIMEOUT = 60
PASSWORDS = {"admin": "admin-pw-7c1", "alice": "alice-pw-3f9", "bob": "bob-pw-d42"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def secured(tmp_path_factory, certs):
    require_binary("kcat", "kcat")
    workdir = tmp_path_factory.mktemp("sasl-ssl")
    users = "".join(f'[[kafka.users]]\nname = "{name}"\npassword = "{password}"\n'
                    for name, password in PASSWORDS.items())
    config = workdir / "secured.toml"
    config.write_text(
        '[kafka]\nsecurity_protocol = "SASL_SSL"\nauthorizer = true\nsuper_users = ["User:admin"]\n'
        f"group_initial_rebalance_delay_ms = 0\n{users}"
        f'[tls]\ncert_file = "{certs.cert_file}"\nkey_file = "{certs.key_file}"\n')
    with broker_process(workdir, "--config", str(config)) as broker:
        yield broker
    log = broker.log_text()
    assert not [p for p in PASSWORDS.values() if p in log], "a password reached the broker's log"


def kcat(broker, certs, *args, user="admin", password=None, mechanism="SCRAM-SHA-256", stdin=None, check=True):
    command = [require_binary("kcat", "kcat"), "-b", broker.kafka_address,
               "-X", "security.protocol=SASL_SSL", "-X", f"ssl.ca.location={certs.ca_file}",
               "-X", f"sasl.mechanisms={mechanism}", "-X", f"sasl.username={user}",
               "-X", f"sasl.password={password or PASSWORDS[user]}", *args]
    result = subprocess.run(command, input=stdin, capture_output=True, timeout=TIMEOUT)
    if check:
        assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result


def admin_client(broker, certs, user="admin", mechanism="SCRAM-SHA-512"):
    admin = require_module("kafka", "kafka-python").admin
    return admin.KafkaAdminClient(bootstrap_servers=broker.kafka_address, security_protocol="SASL_SSL",
                                  ssl_cafile=str(certs.ca_file), sasl_mechanism=mechanism,
                                  sasl_plain_username=user, sasl_plain_password=PASSWORDS[user],
                                  request_timeout_ms=10_000)


def allow(broker, certs, resource_type, name, operation, principal="User:alice", pattern="LITERAL",
          permission="ALLOW"):
    admin = require_module("kafka", "kafka-python").admin
    client = admin_client(broker, certs)
    try:
        acl = admin.ACL(principal=principal, host="*", operation=admin.ACLOperation[operation],
                        permission_type=admin.ACLPermissionType[permission],
                        resource_pattern=admin.ResourcePattern(admin.ResourceType[resource_type], name,
                                                               admin.ACLResourcePatternType[pattern]))
        result = client.create_acls([acl])
        assert result["failed"] == [], result
    finally:
        client.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"])
def test_kcat_over_sasl_ssl_allowed_with_the_password_denied_without(secured, certs, mechanism):
    topic = f"kcat-{mechanism.lower()}"
    kcat(secured, certs, "-P", "-t", topic, mechanism=mechanism, stdin=b"one\ntwo\n")
    out = kcat(secured, certs, "-C", "-t", topic, "-e", "-q", mechanism=mechanism).stdout
    assert out.splitlines() == [b"one", b"two"]
    refused = kcat(secured, certs, "-L", "-m", "5", mechanism=mechanism, password="not-the-password",
                   check=False)
    assert refused.returncode != 0
    assert b"Authentication failed" in refused.stderr


def test_plaintext_kcat_is_refused_by_the_tls_listener_and_nobody_else_notices(secured, certs):
    before = len(secured.log_lines())
    refused = subprocess.run([require_binary("kcat", "kcat"), "-b", secured.kafka_address, "-L", "-m", "3"],
                             capture_output=True, timeout=TIMEOUT)
    assert refused.returncode != 0
    assert kcat(secured, certs, "-L").returncode == 0
    reasons = [line.get("reason", "") for line in secured.log_lines()[before:]
               if line.get("event") == "connection_closed"]
    assert any(reason.startswith("TLS handshake failed") for reason in reasons), reasons


def test_kafka_python_sasl_ssl_allowed_and_a_wrong_password_denied(secured, certs):
    kafka = require_module("kafka", "kafka-python")
    producer = kafka.KafkaProducer(bootstrap_servers=secured.kafka_address, security_protocol="SASL_SSL",
                                   ssl_cafile=str(certs.ca_file), sasl_mechanism="SCRAM-SHA-512",
                                   sasl_plain_username="admin", sasl_plain_password=PASSWORDS["admin"])
    try:
        assert producer.send("kp-secure", b"hello").get(timeout=TIMEOUT).offset == 0
    finally:
        producer.close()
    before = len(secured.log_lines())
    with pytest.raises(kafka.errors.KafkaError):
        kafka.KafkaProducer(bootstrap_servers=secured.kafka_address, security_protocol="SASL_SSL",
                            ssl_cafile=str(certs.ca_file), sasl_mechanism="SCRAM-SHA-256",
                            sasl_plain_username="alice", sasl_plain_password="wrong", max_block_ms=3000,
                            # refused at every bootstrap attempt: give up after 3 s, not 30
                            request_timeout_ms=3000,
                            bootstrap_timeout_ms=3000).send("kp-secure", b"x").get(timeout=10)
    failures = [line for line in secured.log_lines()[before:] if line.get("event") == "sasl_authentication_failed"]
    assert failures and failures[0]["mechanism"] == "SCRAM-SHA-256"


def test_topic_write_and_read_boundaries_with_kcat(secured, certs):
    kcat(secured, certs, "-P", "-t", "orders-eu", stdin=b"first\n")
    denied = kcat(secured, certs, "-P", "-t", "orders-eu", user="alice", stdin=b"x\n", check=False)
    assert denied.returncode != 0 and b"Topic authorization failed" in denied.stderr
    allow(secured, certs, "TOPIC", "orders-", "WRITE", pattern="PREFIXED")
    kcat(secured, certs, "-P", "-t", "orders-eu", user="alice", stdin=b"second\n")
    other = kcat(secured, certs, "-P", "-t", "payments", user="alice", stdin=b"x\n", check=False)
    assert other.returncode != 0 and b"Topic authorization failed" in other.stderr
    # Write implies Describe but not Read.
    unread = kcat(secured, certs, "-C", "-t", "orders-eu", "-e", "-q", user="alice", check=False)
    assert unread.returncode != 0 and b"Topic authorization failed" in unread.stderr
    allow(secured, certs, "TOPIC", "orders-eu", "READ")
    out = kcat(secured, certs, "-C", "-t", "orders-eu", "-e", "-q", user="alice").stdout
    assert out.splitlines() == [b"first", b"second"]


def test_metadata_lists_only_what_the_principal_may_describe(secured, certs):
    kcat(secured, certs, "-P", "-t", "hidden-topic", stdin=b"x\n")
    allow(secured, certs, "TOPIC", "visible-topic", "DESCRIBE", principal="User:bob")
    kcat(secured, certs, "-P", "-t", "visible-topic", stdin=b"x\n")
    listing = kcat(secured, certs, "-L", user="bob").stdout.decode()
    assert 'topic "visible-topic"' in listing and "hidden-topic" not in listing
    assert "hidden-topic" in kcat(secured, certs, "-L").stdout.decode()


def test_consumer_group_needs_group_read_and_deny_wins(secured, certs):
    kafka = require_module("kafka", "kafka-python")
    kcat(secured, certs, "-P", "-t", "grouped", stdin=b"a\nb\n")
    allow(secured, certs, "TOPIC", "grouped", "READ", principal="User:bob")

    def consume(group):
        consumer = kafka.KafkaConsumer("grouped", bootstrap_servers=secured.kafka_address, group_id=group,
                                       security_protocol="SASL_SSL", ssl_cafile=str(certs.ca_file),
                                       sasl_mechanism="PLAIN", sasl_plain_username="bob",
                                       sasl_plain_password=PASSWORDS["bob"], auto_offset_reset="earliest",
                                       consumer_timeout_ms=10_000)
        try:
            return [m.value for m in consumer]
        finally:
            consumer.close()

    with pytest.raises(kafka.errors.GroupAuthorizationFailedError):
        consume("bob-group")
    allow(secured, certs, "GROUP", "bob-", "READ", principal="User:bob", pattern="PREFIXED")
    assert consume("bob-group") == [b"a", b"b"]
    allow(secured, certs, "GROUP", "bob-blocked", "ALL", principal="User:bob", permission="DENY")
    with pytest.raises(kafka.errors.GroupAuthorizationFailedError):
        consume("bob-blocked")


def test_acl_admin_needs_cluster_alter_and_describe(secured, certs):
    admin = require_module("kafka", "kafka-python").admin
    kafka = require_module("kafka", "kafka-python")
    query = admin.ACLFilter(principal=None, host="*", operation=admin.ACLOperation.ANY,
                            permission_type=admin.ACLPermissionType.ANY,
                            resource_pattern=admin.ResourcePatternFilter(admin.ResourceType.ANY, None,
                                                                         admin.ACLResourcePatternType.ANY))
    allow(secured, certs, "TOPIC", "described-topic", "READ", principal="User:bob")
    as_alice = admin_client(secured, certs, user="alice")
    try:
        with pytest.raises(kafka.errors.ClusterAuthorizationFailedError):
            as_alice.describe_acls(query)
        with pytest.raises(kafka.errors.TopicAuthorizationFailedError):
            as_alice.create_topics({"alice-made": {"num_partitions": 1, "replication_factor": 1}})
    finally:
        as_alice.close()
    as_admin = admin_client(secured, certs)
    try:
        acls, error = as_admin.describe_acls(query)
        assert error is kafka.errors.NoError
        assert ("User:bob", "described-topic") in {(a.principal, a.resource_pattern.resource_name) for a in acls}
        created = as_admin.create_topics({"admin-made": {"num_partitions": 1, "replication_factor": 1}})
        assert created is not None
    finally:
        as_admin.close()


@pytest.fixture(scope="module")
def mtls(tmp_path_factory, certs):
    workdir = tmp_path_factory.mktemp("mtls")
    config = workdir / "mtls.toml"
    config.write_text(
        '[kafka]\nsecurity_protocol = "SSL"\nauthorizer = true\n'
        'super_users = ["User:CN=operator,O=dualmq"]\n'
        f'[tls]\ncert_file = "{certs.cert_file}"\nkey_file = "{certs.key_file}"\n'
        f'ca_file = "{certs.ca_file}"\nclient_auth = "required"\n')
    with broker_process(workdir, "--config", str(config)) as broker:
        yield broker


def test_mtls_principal_is_the_certificate_subject(mtls, certs):
    def run(name, *args, stdin=None):
        command = [require_binary("kcat", "kcat"), "-b", mtls.kafka_address, "-X", "security.protocol=SSL",
                   "-X", f"ssl.ca.location={certs.ca_file}"]
        if name is not None:
            cert, key = certs.client(name)
            command += ["-X", f"ssl.certificate.location={cert}", "-X", f"ssl.key.location={key}"]
        return subprocess.run([*command, *args], input=stdin, capture_output=True, timeout=TIMEOUT)

    assert run("operator", "-P", "-t", "audit", stdin=b"entry\n").returncode == 0
    denied = run("carol", "-P", "-t", "audit", stdin=b"x\n")
    assert denied.returncode != 0 and b"Topic authorization failed" in denied.stderr
    assert run(None, "-L", "-m", "3").returncode != 0  # no certificate: the handshake is refused
    time.sleep(0.2)
    principals = {line.get("principal") for line in mtls.log_lines() if line.get("event") == "connection_closed"}
    assert {"User:CN=operator,O=dualmq", "User:CN=carol,O=dualmq"} <= principals


def test_kafka_python_reauthenticates_before_its_session_ends(tmp_path, certs):
    kafka = require_module("kafka", "kafka-python")
    config = tmp_path / "reauth.toml"
    config.write_text('[kafka]\nsecurity_protocol = "SASL_PLAINTEXT"\nconnections_max_reauth_ms = 2000\n'
                      f'[[kafka.users]]\nname = "alice"\npassword = "{PASSWORDS["alice"]}"\n')
    with broker_process(tmp_path, "--config", str(config)) as broker:
        producer = kafka.KafkaProducer(bootstrap_servers=broker.kafka_address, security_protocol="SASL_PLAINTEXT",
                                       sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="alice",
                                       sasl_plain_password=PASSWORDS["alice"])
        try:
            offsets = []
            for _ in range(15):  # 4.5 s: more than two session lifetimes
                offsets.append(producer.send("renewed", b"x").get(timeout=TIMEOUT).offset)
                time.sleep(0.3)
        finally:
            producer.close()
        lines = broker.log_lines()
    assert offsets == list(range(15))  # no request was refused or lost
    logins: dict[int, int] = {}
    for line in lines:
        if line.get("event") == "sasl_authenticated":
            logins[line["conn_id"]] = logins.get(line["conn_id"], 0) + 1
    assert max(logins.values()) >= 3, logins  # one login, then re-authentications on that connection
    assert not [line for line in lines if line.get("event") == "sasl_session_expired"]
