"""SCRAM credentials and the server side of the exchange (RFC 5802 / RFC 7677).

The client side here is written from the RFC's formulas, independently of the server code; the
RFC 7677 test vector pins the whole computation to bytes someone else published.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.errors import ConfigError
from broker.security.kafka_users import KafkaUser, KafkaUsers, parse_users
from broker.security.scram import ScramCredential, ScramError, ScramServer, check_password, make_credential


def client_final(server_first: str, first_bare: str, password: str, algorithm: str,
                 gs2: str = "n,,") -> tuple[str, bytes]:
    """(client-final message, expected server signature) from the RFC's formulas."""
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(algorithm, password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = hmac.digest(salted, b"Client Key", algorithm)
    stored_key = hashlib.new(algorithm, client_key).digest()
    without_proof = f"c={base64.b64encode(gs2.encode()).decode()},r={fields['r']}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(stored_key, auth_message, algorithm)
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    server_key = hmac.digest(salted, b"Server Key", algorithm)
    return (f"{without_proof},p={base64.b64encode(proof).decode()}",
            hmac.digest(server_key, auth_message, algorithm))


def test_rfc7677_test_vector():
    # RFC 7677 section 3: user "user", password "pencil", the nonces and salt it gives.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    credential = make_credential("pencil", "SCRAM-SHA-256", salt=salt, iterations=4096)
    server = ScramServer("SCRAM-SHA-256", lambda user: credential if user == "user" else None,
                         nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    first = server.first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    assert first == b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    final = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
             b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    assert server.final(final) == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert server.username == "user" and server.done


@pytest.mark.parametrize("mechanism,algorithm", [("SCRAM-SHA-256", "sha256"), ("SCRAM-SHA-512", "sha512")])
def test_exchange_allowed_with_the_right_password_denied_with_a_wrong_one(mechanism, algorithm):
    credential = make_credential("s3cret", mechanism)
    for password, ok in (("s3cret", True), ("wrong", False)):
        server = ScramServer(mechanism, lambda user: credential)
        first_bare = "n=alice,r=clientnonce"
        server_first = server.first(f"n,,{first_bare}".encode()).decode()
        final, expected_signature = client_final(server_first, first_bare, password, algorithm)
        if ok:
            assert server.final(final.encode()) == b"v=" + base64.b64encode(expected_signature)
        else:
            with pytest.raises(ScramError, match="invalid credentials"):
                server.final(final.encode())


def test_unknown_user_and_replayed_nonce_are_refused():
    credential = make_credential("pw", "SCRAM-SHA-256")
    with pytest.raises(ScramError, match="invalid credentials"):
        ScramServer("SCRAM-SHA-256", lambda user: None).first(b"n,,n=bob,r=abc")
    server = ScramServer("SCRAM-SHA-256", lambda user: credential)
    server_first = server.first(b"n,,n=alice,r=abc").decode()
    final, _ = client_final(server_first.replace("r=abc", "r=xyz", 1), "n=alice,r=abc", "pw", "sha256")
    with pytest.raises(ScramError, match="nonce"):
        server.final(final.encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_arbitrary_bytes_give_scram_error_or_answer_never_anything_else(first, final):
    credential = make_credential("pw", "SCRAM-SHA-256", iterations=4096, salt=b"fixed-salt")
    server = ScramServer("SCRAM-SHA-256", lambda user: credential)
    try:
        server.first(first)
        server.final(final)
    except ScramError:
        pass
    assert not server.done  # random bytes never carry a valid proof


def test_credential_round_trips_and_never_shows_its_keys():
    credential = make_credential("pw", "SCRAM-SHA-512")
    assert ScramCredential.decode(credential.encode()) == credential
    assert check_password(credential, "pw") and not check_password(credential, "pW")
    assert base64.b64encode(credential.stored_key).decode() not in repr(credential)
    with pytest.raises(ScramError):
        ScramCredential.decode("SCRAM-SHA-256:10:AA==:AA==:AA==")


def test_users_from_tables_hash_passwords_and_refuse_bad_tables():
    (alice,) = parse_users([{"name": "alice", "password": "pw"}])
    assert "pw" not in repr(alice) and {c.mechanism for c in alice.credentials} == {"SCRAM-SHA-256", "SCRAM-SHA-512"}
    (again,) = parse_users([alice.to_table()])
    assert again == alice
    users = KafkaUsers.of((alice,))
    assert users.check_plain("alice", "pw") and not users.check_plain("alice", "nope")
    assert not users.check_plain("mallory", "pw")
    for bad in ([{"name": "x"}], [{"name": "x", "password": "a", "password_hash": "b"}],
                [{"name": "x", "password": "a", "colour": "red"}], [{"password": "a"}],
                [{"name": "x", "password": "a"}, {"name": "x", "password": "b"}]):
        with pytest.raises(ConfigError):
            parse_users(bad)
    assert isinstance(KafkaUser.with_password("bob", "x"), KafkaUser)
