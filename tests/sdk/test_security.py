"""The SDK's TLS and SASL arguments (kafka-python's and redis-py's names) against a real broker.

The broker runs embedded, with certificates made per run by ``openssl``; SCRAM's client half is
also checked alone, against a broker signature that is wrong.
"""

from __future__ import annotations

import pytest
import trio

import dualmq
from broker.config import TlsConfig
from dualmq.embedded import broker as embedded_broker
from dualmq.pull.security import ClientSecurity, ScramClient
from tests.certificates import make_certificates

USERS = [{"name": "alice", "password": "alice-pw"}]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


def secured(tmp_path, certs):
    return embedded_broker(tmp_path / "data", kafka={"security_protocol": "SASL_SSL", "users": USERS},
                           resp={"tls": True},
                           tls=TlsConfig(cert_file=str(certs.cert_file), key_file=str(certs.key_file)))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_producer_and_consumer_authenticate_over_tls(tmp_path, certs, mechanism):
    security = dict(security_protocol="SASL_SSL", ssl_cafile=str(certs.ca_file), sasl_mechanism=mechanism,
                    sasl_plain_username="alice", sasl_plain_password="alice-pw")
    async with secured(tmp_path, certs) as broker:
        async with dualmq.Producer(broker.kafka, **security) as producer:
            assert await producer.send("secure", b"hello") == (0, 0)
        async with dualmq.Consumer(broker.kafka, group_id="g", topics=["secure"], auto_offset_reset="earliest",
                                   **security) as consumer:
            with trio.fail_after(20):
                record = await anext(consumer)
        assert record.value == b"hello"


async def test_wrong_password_raises_authentication_failed_and_plaintext_is_told_about_tls(tmp_path, certs):
    async with secured(tmp_path, certs) as broker:
        with pytest.raises(dualmq.AuthenticationError, match="invalid credentials"):
            async with dualmq.Producer(broker.kafka, security_protocol="SASL_SSL", ssl_cafile=str(certs.ca_file),
                                       sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="alice",
                                       sasl_plain_password="wrong-pw"):
                pass
        with pytest.raises(dualmq.ConnectionLost, match="security_protocol"):
            async with dualmq.Admin(broker.kafka, request_timeout_ms=3000):
                pass


async def test_push_clients_speak_tls_and_an_untrusted_certificate_is_refused(tmp_path, certs):
    async with secured(tmp_path, certs) as broker:
        tls = dict(ssl=True, ssl_ca_certs=str(certs.ca_file))
        async with dualmq.subscribe(broker.resp, "news", **tls) as subscription:
            async with dualmq.Publisher(broker.resp, **tls) as publisher:
                assert await publisher.publish("news", b"over tls") == 1
            with trio.fail_after(10):
                async for message in subscription:
                    assert message.data == b"over tls"
                    break
        with pytest.raises(dualmq.ConnectionLost, match="certificate verify failed"):
            async with dualmq.Publisher(broker.resp, ssl=True, timeout=5) as publisher:
                await publisher.publish("news", b"x")


def test_scram_client_refuses_a_broker_without_our_credential():
    client = ScramClient("SCRAM-SHA-256", "alice", "pw", nonce="abc")
    client.first()
    client.final(b"r=abcXYZ,s=c2FsdA==,i=4096")
    with pytest.raises(dualmq.AuthenticationError, match="signature"):
        client.verify(b"v=AAAA")
    with pytest.raises(dualmq.AuthenticationError, match="nonce"):
        ScramClient("SCRAM-SHA-256", "alice", "pw", nonce="abc").final(b"r=zzz,s=c2FsdA==,i=4096")


def test_security_arguments_are_checked_and_the_password_is_not_shown():
    with pytest.raises(ValueError, match="sasl_plain_username"):
        ClientSecurity(security_protocol="SASL_PLAINTEXT")
    with pytest.raises(ValueError, match="security_protocol"):
        ClientSecurity(security_protocol="TLS")
    with pytest.raises(TypeError):
        dualmq.Producer("127.0.0.1:1", sasl_password="typo-in-the-name")
    settings = ClientSecurity(security_protocol="SASL_PLAINTEXT", sasl_plain_username="u", sasl_plain_password="pw")
    assert "pw" not in repr(settings)
