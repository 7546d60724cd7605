"""SASL on the Kafka listener, byte by byte: handshake, tokens (v1 and v0), failures, isolation.

The real-client side (kcat, kafka-python) is in ``tests/interop/test_kafka_security.py``; here
each rule is driven with our raw client, so malformed input can be sent on purpose.
"""

from __future__ import annotations

import base64
import struct

import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from broker.security.kafka_users import KafkaUsers, parse_users
from modes.pull.sasl import AuthenticationFailed, ConnectionSecurity
from tests.broker.test_scram import client_final
from tests.modes.pull.raw import pull_broker
from wire.kafka.errors import ErrorCode

HANDSHAKE, AUTHENTICATE, METADATA, API_VERSIONS = 17, 36, 3, 18
USERS = ({"name": "alice", "password": "alice-pw"},)


def sasl_broker(tmp_path, **kafka):
    return pull_broker(tmp_path, security_protocol="SASL_PLAINTEXT", users=USERS, **kafka)


async def authenticate_plain(client, password="alice-pw", version=1):
    handshake = await client.call(HANDSHAKE, version, {"mechanism": "PLAIN"})
    assert handshake["error_code"] == ErrorCode.NONE
    return await client.call(AUTHENTICATE, 2, {"auth_bytes": b"\x00alice\x00" + password.encode()})


async def test_plain_then_requests_are_served(tmp_path):
    async with sasl_broker(tmp_path) as broker:
        client = await broker.connect()
        answer = await authenticate_plain(client)
        assert answer["error_code"] == ErrorCode.NONE and answer["session_lifetime_ms"] == 0
        metadata = await client.call(METADATA, 9, {"topics": None, "allow_auto_topic_creation": False})
        assert metadata["brokers"][0]["port"] == broker.port


async def test_wrong_password_is_answered_then_closed_and_never_logged(tmp_path):
    async with sasl_broker(tmp_path) as broker:
        client = await broker.connect()
        with capture_logs() as logs:
            answer = await authenticate_plain(client, password="guess-pw")
            await client.expect_closed()
        assert answer["error_code"] == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert answer["error_message"] == "Authentication failed: Invalid username or password"
        assert "guess-pw" not in repr(logs) and "alice-pw" not in repr(logs)
        assert any(entry["event"] == "sasl_authentication_failed" for entry in logs)


async def test_scram_sha_512_exchange_over_the_wire(tmp_path):
    async with sasl_broker(tmp_path) as broker:
        client = await broker.connect()
        assert (await client.call(HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-512"}))["error_code"] == ErrorCode.NONE
        first_bare = "n=alice,r=rawclientnonce"
        first = await client.call(AUTHENTICATE, 1, {"auth_bytes": f"n,,{first_bare}".encode()})
        final, signature = client_final(bytes(first["auth_bytes"]).decode(), first_bare, "alice-pw", "sha512")
        done = await client.call(AUTHENTICATE, 1, {"auth_bytes": final.encode()})
        assert done["error_code"] == ErrorCode.NONE
        assert bytes(done["auth_bytes"]) == b"v=" + base64.b64encode(signature)


async def test_requests_before_authentication_close_only_that_connection(tmp_path):
    async with sasl_broker(tmp_path) as broker:
        good = await broker.connect()
        await authenticate_plain(good)
        bad = await broker.connect()
        # ApiVersions is allowed before authenticating (clients need it to pick versions).
        assert (await bad.call(API_VERSIONS, 0, {}))["error_code"] == ErrorCode.NONE
        _, frame = bad.encode(METADATA, 9, {"topics": None, "allow_auto_topic_creation": False})
        await bad.send(frame)
        await bad.expect_closed()
        assert (await good.call(METADATA, 9, {"topics": None, "allow_auto_topic_creation": False}))["brokers"]


async def test_malformed_tokens_get_a_clear_error_and_do_not_disturb_others(tmp_path):
    async with sasl_broker(tmp_path) as broker:
        good = await broker.connect()
        await authenticate_plain(good)
        for mechanism, token, message in (
            ("PLAIN", b"no-nul-bytes-here", "Invalid SASL/PLAIN response: expected 3 tokens separated by NUL"),
            ("PLAIN", b"\x00\xff\xfe\x00pw", "Invalid SASL/PLAIN response: not UTF-8"),
            ("SCRAM-SHA-256", b"\x00garbage", "malformed client-first message (no GS2 header, or channel "
                                              "binding asked for)"),
            ("SCRAM-SHA-256", b"n,,r=nonce-only", "malformed client-first message: needs n= and r="),
        ):
            bad = await broker.connect()
            await bad.call(HANDSHAKE, 1, {"mechanism": mechanism})
            answer = await bad.call(AUTHENTICATE, 0, {"auth_bytes": token})
            assert (answer["error_code"], answer["error_message"]) == (ErrorCode.SASL_AUTHENTICATION_FAILED, message)
            await bad.expect_closed()
        assert (await good.call(METADATA, 9, {"topics": None, "allow_auto_topic_creation": False}))["brokers"]


async def test_handshake_v0_then_bare_token_frames(tmp_path):
    async with sasl_broker(tmp_path) as broker:
        client = await broker.connect()
        assert (await client.call(HANDSHAKE, 0, {"mechanism": "PLAIN"}))["mechanisms"] == [
            "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
        token = b"\x00alice\x00alice-pw"
        await client.send(struct.pack(">i", len(token)) + token)
        assert await client.read_frame() == b"\x00\x00\x00\x00"  # an empty server token
        assert (await client.call(METADATA, 0, {"topics": []}))["brokers"]
        refused = await broker.connect()
        await refused.call(HANDSHAKE, 0, {"mechanism": "PLAIN"})
        await refused.send(struct.pack(">i", 3) + b"bad")
        await refused.expect_closed()


async def test_unsupported_mechanism_and_out_of_order_requests(tmp_path):
    async with sasl_broker(tmp_path, sasl_mechanisms=["SCRAM-SHA-256"]) as broker:
        client = await broker.connect()
        answer = await client.call(HANDSHAKE, 1, {"mechanism": "PLAIN"})
        assert answer == {"error_code": ErrorCode.UNSUPPORTED_SASL_MECHANISM, "mechanisms": ["SCRAM-SHA-256"]}
        early = await broker.connect()
        answer = await early.call(AUTHENTICATE, 1, {"auth_bytes": b"x"})
        assert answer["error_code"] == ErrorCode.ILLEGAL_SASL_STATE
        await early.expect_closed()


async def test_handshake_on_a_plaintext_listener_is_illegal_state(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        assert (await client.call(HANDSHAKE, 1, {"mechanism": "PLAIN"}))["error_code"] == ErrorCode.ILLEGAL_SASL_STATE
        # ... and the connection stays usable, as on Kafka's PLAINTEXT listener.
        assert (await client.call(METADATA, 9, {"topics": None, "allow_auto_topic_creation": False}))["brokers"]


# --- arbitrary tokens: an answer or AuthenticationFailed, never anything else -------------------

_USERS = KafkaUsers.of(parse_users([{"name": "alice", "password": "alice-pw"}]))


@settings(max_examples=300, deadline=None)
@given(mechanism=st.sampled_from(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]),
       tokens=st.lists(st.one_of(st.binary(max_size=120),
                                 st.sampled_from([b"n,,n=alice,r=x", b"\x00alice\x00", b"c=biws,r=x,p=AAAA"])),
                       min_size=1, max_size=3))
def test_arbitrary_tokens_fail_cleanly(mechanism, tokens):
    security = ConnectionSecurity(sasl_required=True, mechanisms=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
                                  users=_USERS)
    assert security.handshake(mechanism, 1)
    try:
        for token in tokens:
            assert isinstance(security.authenticate(token), bytes)
    except AuthenticationFailed as exc:
        assert "alice-pw" not in str(exc)
    assert not security.authenticated  # no token sequence here carries a valid password or proof


# --- KIP-368 re-authentication ---------------------------------------------------------------


async def test_reauthentication_renews_the_session_and_keeps_the_principal(tmp_path):
    users = USERS + ({"name": "bob", "password": "bob-pw"},)
    async with pull_broker(tmp_path, security_protocol="SASL_PLAINTEXT", users=users,
                           connections_max_reauth_ms=60_000) as broker:
        client = await broker.connect()
        first = await authenticate_plain(client)
        assert first["session_lifetime_ms"] == 60_000
        again = await authenticate_plain(client)  # a second handshake: a re-authentication
        assert (again["error_code"], again["session_lifetime_ms"]) == (ErrorCode.NONE, 60_000)
        assert (await client.call(METADATA, 9, {"topics": None, "allow_auto_topic_creation": False}))["brokers"]
        await client.call(HANDSHAKE, 1, {"mechanism": "PLAIN"})
        as_bob = await client.call(AUTHENTICATE, 2, {"auth_bytes": b"\x00bob\x00bob-pw"})
        assert as_bob["error_code"] == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert "Cannot change principals" in as_bob["error_message"]
        await client.expect_closed()


async def test_a_session_not_renewed_in_time_closes_the_connection(tmp_path):
    async with pull_broker(tmp_path, security_protocol="SASL_PLAINTEXT", users=USERS,
                           connections_max_reauth_ms=100) as broker:
        client = await broker.connect()
        await authenticate_plain(client)
        await trio.sleep(0.15)  # the wall clock decides, as in Kafka
        _, frame = client.encode(METADATA, 9, {"topics": None, "allow_auto_topic_creation": False})
        await client.send(frame)
        await client.expect_closed()


def test_session_ends_only_when_the_answer_could_say_so():
    security = ConnectionSecurity(sasl_required=True, mechanisms=("PLAIN",), users=_USERS, reauth_ms=1000)
    security.handshake("PLAIN", 1)
    security.authenticate(b"\x00alice\x00alice-pw", 5_000, lifetime_sent=True)
    assert not security.session_expired(5_999) and security.session_expired(6_000)
    legacy = ConnectionSecurity(sasl_required=True, mechanisms=("PLAIN",), users=_USERS, reauth_ms=1000)
    legacy.handshake("PLAIN", 0)
    legacy.authenticate(b"\x00alice\x00alice-pw", 5_000)  # v0: no lifetime was sent
    assert not legacy.session_expired(10**12) and not legacy.may_handshake()
