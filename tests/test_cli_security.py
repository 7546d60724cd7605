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
