"""RESP over TLS (``resp.tls = true``) with clients nobody here wrote: redis-cli and redis-py.

The broker's certificate is made per run with ``openssl``; clients that trust its CA get
through, clients that do not speak TLS (or, with ``client_auth = "required"``, bring no
certificate) are refused at the handshake — and a subscriber already connected keeps
receiving while they are.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.certificates import make_certificates
from tests.support import broker_process, require_binary, require_module

pytestmark = pytest.mark.interop

TIMEOUT = 30


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


def tls_broker(workdir, certs, client_auth="none"):
    config = workdir / "tls.toml"
    ca = f'ca_file = "{certs.ca_file}"\n' if client_auth != "none" else ""
    config.write_text(f'[resp]\ntls = true\n[tls]\ncert_file = "{certs.cert_file}"\n'
                      f'key_file = "{certs.key_file}"\n{ca}client_auth = "{client_auth}"\n')
    return broker_process(workdir, "--config", str(config))


@pytest.fixture(scope="module")
def broker(tmp_path_factory, certs):
    with tls_broker(tmp_path_factory.mktemp("resp-tls"), certs) as running:
        yield running


def redis_cli(broker, certs, *args, tls=True, extra=()):
    host, port = broker.resp
    command = [require_binary("redis-cli", "redis-tools"), "-h", host, "-p", str(port)]
    if tls:
        command += ["--tls", "--cacert", str(certs.ca_file), *extra]
    return subprocess.run([*command, *args], capture_output=True, timeout=TIMEOUT)


def test_redis_cli_over_tls_is_served_and_plaintext_is_refused(broker, certs):
    assert redis_cli(broker, certs, "PING").stdout == b"PONG\n"
    plain = redis_cli(broker, certs, "PING", tls=False)
    assert b"PONG" not in plain.stdout
    reasons = [line.get("reason", "") for line in broker.log_lines() if line.get("event") == "connection_closed"]
    assert any(reason.startswith("TLS handshake failed") for reason in reasons), reasons


def test_redis_py_ssl_subscriber_keeps_receiving_while_a_plaintext_client_is_refused(broker, certs):
    redis = require_module("redis", "redis")
    host, port = broker.resp
    subscriber = redis.Redis(host=host, port=port, ssl=True, ssl_ca_certs=str(certs.ca_file),
                             socket_timeout=TIMEOUT)
    publisher = redis.Redis(host=host, port=port, ssl=True, ssl_ca_certs=str(certs.ca_file),
                            socket_timeout=TIMEOUT)
    try:
        pubsub = subscriber.pubsub()
        pubsub.subscribe("news")
        assert pubsub.get_message(timeout=TIMEOUT)["type"] == "subscribe"
        plaintext = redis.Redis(host=host, port=port, socket_timeout=5)
        with pytest.raises(redis.exceptions.ConnectionError):
            plaintext.ping()
        plaintext.close()
        assert publisher.publish("news", b"x" * 100_000) == 1  # larger than one TLS record
        message = pubsub.get_message(timeout=TIMEOUT)
        assert message["type"] == "message" and message["data"] == b"x" * 100_000
        pubsub.close()
    finally:
        subscriber.close()
        publisher.close()


def test_redis_py_without_the_ca_does_not_trust_the_broker(broker):
    redis = require_module("redis", "redis")
    host, port = broker.resp
    untrusting = redis.Redis(host=host, port=port, ssl=True, socket_timeout=5)
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        untrusting.ping()
    untrusting.close()


def test_required_client_certificates(tmp_path, certs):
    with tls_broker(tmp_path, certs, client_auth="required") as broker:
        cert, key = certs.client("resp-client")
        served = redis_cli(broker, certs, "PING", extra=("--cert", str(cert), "--key", str(key)))
        assert served.stdout == b"PONG\n", served.stderr
        refused = redis_cli(broker, certs, "PING")
        assert b"PONG" not in refused.stdout
