"""``--user/--password/--sasl-mechanism/--tls/--ca-file`` on the CLI's client commands.

One broker with a SASL_SSL Kafka listener and a TLS RESP listener (certificates made per run
with ``openssl``); each command is run once with the right credentials and once without.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.certificates import make_certificates
from tests.support import broker_process

PASSWORD = "cli-alice-pw"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli-security")
    certs = make_certificates(workdir / "certs")
    config = workdir / "secured.toml"
    config.write_text(
        '[kafka]\nsecurity_protocol = "SASL_SSL"\n'
        f'[[kafka.users]]\nname = "alice"\npassword = "{PASSWORD}"\n'
        '[resp]\ntls = true\n'
        f'[tls]\ncert_file = "{certs.cert_file}"\nkey_file = "{certs.key_file}"\n')
    with broker_process(workdir, "--config", str(config)) as broker:
        yield broker, certs


def dualmq(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualmq", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_produce_consume_and_topics_with_credentials_and_without(secured):
    broker, certs = secured
    login = ["--kafka", broker.kafka_address, "--user", "alice", "--ca-file", str(certs.ca_file)]
    produced = dualmq("produce", "guarded", *login, "--password", PASSWORD, stdin="first\n")
    assert produced.returncode == 0, produced.stderr
    consumed = dualmq("consume", "guarded", *login, "--from-beginning", "--max", "1",
                      "--sasl-mechanism", "SCRAM-SHA-512", env={"DUALMQ_PASSWORD": PASSWORD})
    assert consumed.stdout == "first\n", consumed.stderr
    wrong = dualmq("topics", "list", *login, "--password", "not-it")
    assert wrong.returncode == 1 and "Authentication failed" in wrong.stderr
    missing = dualmq("topics", "list", *login)
    assert missing.returncode == 1 and "--user needs --password" in missing.stderr
    anonymous = dualmq("topics", "list", "--kafka", broker.kafka_address)
    assert anonymous.returncode == 1 and "security_protocol" in anonymous.stderr


def test_publish_over_tls_and_refused_in_plaintext(secured):
    broker, certs = secured
    resp = f"{broker.resp[0]}:{broker.resp[1]}"
    published = dualmq("publish", "news", "hello", "--resp", resp, "--ca-file", str(certs.ca_file))
    assert published.returncode == 0 and "delivered to 0 subscribers" in published.stdout, published.stderr
    plaintext = dualmq("publish", "news", "hello", "--resp", resp)
    assert plaintext.returncode == 1 and "ssl=True" in plaintext.stderr


def test_users_add_pull_hashes_the_password_into_the_config_and_refuses_a_second_alice(tmp_path):
    config = tmp_path / "users.toml"
    config.write_text('[kafka]\nsecurity_protocol = "SASL_PLAINTEXT"\n')
    added = dualmq("users", "add", "alice", "--mode", "pull", "--config", str(config), stdin="hashed-pw-91\n")
    assert added.returncode == 0, added.stderr
    text = config.read_text()
    assert "hashed-pw-91" not in text and 'password_hash = ["SCRAM-SHA-256:4096:' in text
    again = dualmq("users", "add", "alice", "--mode", "pull", "--config", str(config), stdin="x\n")
    assert again.returncode == 1 and "already exists" in again.stderr and config.read_text() == text
    assert dualmq("users", "list", "--mode", "pull", "--config", str(config)).stdout == "alice\n"


def test_acl_add_list_remove_as_the_super_user_and_refused_to_others(tmp_path):
    config = tmp_path / "acl.toml"
    config.write_text('[kafka]\nsecurity_protocol = "SASL_PLAINTEXT"\nauthorizer = true\n'
                      'super_users = ["User:admin"]\n')
    for name in ("admin", "alice"):
        added = dualmq("users", "add", name, "--mode", "pull", "--config", str(config), stdin=f"{name}-pw\n")
        assert added.returncode == 0, added.stderr
    with broker_process(tmp_path, "--config", str(config)) as broker:
        def as_user(name, *args, stdin=""):
            return dualmq(*args, "--kafka", broker.kafka_address, "--user", name, "--password", f"{name}-pw",
                          stdin=stdin)

        refused = as_user("alice", "produce", "orders-eu", stdin="x\n")
        assert refused.returncode == 1 and "AUTHORIZATION_FAILED" in refused.stderr
        # Write on the topics (which also lets the idempotent producer start) and Create, since the
        # first produce creates the topic.
        added = as_user("admin", "acl", "add", "--allow-principal", "User:alice", "--operation", "write",
                        "--operation", "create", "--topic", "orders-", "--resource-pattern-type", "prefixed")
        assert added.returncode == 0, added.stderr
        produced = as_user("alice", "produce", "orders-eu", stdin="x\n")
        assert produced.returncode == 0, produced.stderr
        listed = as_user("admin", "acl", "list", "--principal", "User:alice", "--topic", "orders-")
        assert listed.stdout.splitlines() == ["User:alice allow write from * on topic prefixed 'orders-'",
                                              "User:alice allow create from * on topic prefixed 'orders-'"]
        denied = as_user("alice", "acl", "list")
        assert denied.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in denied.stderr
        removed = as_user("admin", "acl", "remove", "--topic", "orders-", "--resource-pattern-type", "prefixed")
        assert len(removed.stdout.splitlines()) == 2
        assert as_user("alice", "produce", "orders-eu", stdin="y\n").returncode == 1
