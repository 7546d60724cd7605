"""Authentication and permissions with clients nobody here wrote: redis-cli and redis-py.

One broker, configured the way the README's "Securing the broker" shows: a ``requirepass``
for ``default``, and ``[[resp.users]]`` — ``alice`` may publish and subscribe to ``news.*``
only, ``ops`` everything but CLIENT KILL (given as a stored hash). Each boundary has an
allowed and a denied test; at the end, no password appears in any line the broker logged.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time

import pytest

from tests.support import broker_process, require_binary, require_module

redis = require_module("redis", "redis")

pytestmark = pytest.mark.interop

TIMEOUT = 5.0
DEFAULT_PASSWORD = "default-Secret-41"
ALICE_PASSWORD = "alice-Secret-42"
OPS_PASSWORD = "ops-Secret-43"
NEW_PASSWORD = "set-by-acl-Secret-44"
WRONG_PASSWORD = "wrong-Secret-45"
SECRETS = (DEFAULT_PASSWORD, ALICE_PASSWORD, OPS_PASSWORD, NEW_PASSWORD, WRONG_PASSWORD)

CONFIG = f"""\
[resp]
requirepass = "{DEFAULT_PASSWORD}"

[[resp.users]]
name = "alice"
password = "{ALICE_PASSWORD}"
rules = "on +@pubsub +ping &news.*"

[[resp.users]]
name = "ops"
password_hash = "{hashlib.sha256(OPS_PASSWORD.encode()).hexdigest()}"
rules = "on +@all -client|kill allchannels"
"""


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("acl-clients")
    config = workdir / "dualmq.toml"
    config.write_text(CONFIG)
    with broker_process(workdir, "--config", str(config)) as running:
        yield running


def cli(broker, *args: str, user: str | None = None, password: str | None = None) -> str:
    exe = require_binary("redis-cli", "redis-tools")
    auth = ([] if user is None else ["--user", user]) + ([] if password is None else ["--pass", password])
    result = subprocess.run([exe, "-h", broker.resp[0], "-p", str(broker.resp[1]), *auth, "--no-auth-warning",
                             *args], capture_output=True, text=True, timeout=TIMEOUT)
    return (result.stdout + result.stderr).strip()


def client(broker, **kwargs) -> redis.Redis:
    return redis.Redis(host=broker.resp[0], port=broker.resp[1], socket_timeout=TIMEOUT,
                       socket_connect_timeout=TIMEOUT, **kwargs)


# --- redis-cli ----------------------------------------------------------------------------------

def test_redis_cli_without_password_is_refused(broker) -> None:
    assert cli(broker, "PUBLISH", "news.a", "x") == "NOAUTH Authentication required."


def test_redis_cli_default_password_allowed(broker) -> None:
    assert cli(broker, "PUBLISH", "anything", "x", password=DEFAULT_PASSWORD) == "0"


def test_redis_cli_user_allowed_on_its_channels(broker) -> None:
    assert cli(broker, "PUBLISH", "news.a", "x", user="alice", password=ALICE_PASSWORD) == "0"


def test_redis_cli_user_denied_other_channels(broker) -> None:
    assert cli(broker, "PUBLISH", "sports", "x", user="alice", password=ALICE_PASSWORD) == (
        "NOPERM this user has no permissions to access one of the channels used as arguments")


def test_redis_cli_user_denied_other_commands(broker) -> None:
    assert cli(broker, "CLIENT", "LIST", user="alice", password=ALICE_PASSWORD) == (
        "NOPERM this user has no permissions to run the 'client|list' command")


def test_redis_cli_wrong_password(broker) -> None:
    output = cli(broker, "PING", user="alice", password=WRONG_PASSWORD)
    assert "WRONGPASS invalid username-password pair or user is disabled." in output


def test_redis_cli_client_kill_denied_but_list_allowed(broker) -> None:
    assert "user=ops" in cli(broker, "CLIENT", "LIST", user="ops", password=OPS_PASSWORD)
    assert cli(broker, "CLIENT", "KILL", "ID", "1", user="ops", password=OPS_PASSWORD) == (
        "NOPERM this user has no permissions to run the 'client|kill' command")


# --- redis-py -----------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_user_publishes_and_subscribes_within_its_channels(broker, protocol: int) -> None:
    with client(broker, username="alice", password=ALICE_PASSWORD, protocol=protocol) as conn:
        pubsub = conn.pubsub()
        pubsub.subscribe("news.today")
        assert pubsub.get_message(timeout=TIMEOUT)["type"] == "subscribe"
        assert conn.publish("news.today", "hello") == 1
        deadline = time.monotonic() + TIMEOUT
        message = None
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
        assert message is not None and message["data"] == b"hello"
        pubsub.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_user_denied_outside_its_channels(broker, protocol: int) -> None:
    with client(broker, username="alice", password=ALICE_PASSWORD, protocol=protocol) as conn:
        with pytest.raises(redis.exceptions.NoPermissionError):
            conn.publish("sports", "x")
        with pytest.raises(redis.exceptions.NoPermissionError):
            conn.client_list()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_wrong_password_is_refused(broker, protocol: int) -> None:
    with client(broker, username="alice", password=WRONG_PASSWORD, protocol=protocol) as conn:
        with pytest.raises(redis.exceptions.AuthenticationError):
            conn.ping()


def test_redis_py_without_credentials_is_refused(broker) -> None:
    with client(broker, protocol=2) as conn:
        with pytest.raises(redis.exceptions.AuthenticationError):
            conn.publish("news.a", "x")


def test_redis_py_default_password_allowed(broker) -> None:
    with client(broker, password=DEFAULT_PASSWORD) as conn:
        assert conn.acl_whoami() == "default"
        assert conn.publish("anything", "x") == 0


def test_revoking_a_channel_disconnects_its_subscriber(broker) -> None:
    with client(broker, username="ops", password=OPS_PASSWORD) as admin:
        admin.acl_setuser("carol", enabled=True, passwords=["+" + NEW_PASSWORD], commands=["+@pubsub"],
                          channels=["news.*"])
        with client(broker, username="carol", password=NEW_PASSWORD, protocol=2) as conn:
            pubsub = conn.pubsub()
            pubsub.subscribe("news.x")
            assert pubsub.get_message(timeout=TIMEOUT)["type"] == "subscribe"
            admin.acl_setuser("carol", reset_channels=True, channels=["other"])
            with pytest.raises(redis.exceptions.ConnectionError):
                deadline = time.monotonic() + TIMEOUT
                while time.monotonic() < deadline:
                    pubsub.get_message(timeout=0.2)
            pubsub.close()
        assert admin.acl_deluser("carol") == 1


# --- protected mode and the logs ----------------------------------------------------------------

def test_password_lets_remote_clients_in_despite_protected_mode(broker) -> None:
    """127.0.0.2 counts as remote for protected mode; with a password it is simply asked for it."""
    with socket.socket() as sock:
        sock.settimeout(TIMEOUT)
        sock.bind(("127.0.0.2", 0))
        sock.connect(broker.resp)
        sock.sendall(b"PING\r\n")
        assert sock.recv(100) == b"-NOAUTH Authentication required.\r\n"


def test_no_credential_in_any_log_line(broker) -> None:
    # Every way a password travels: AUTH ok and wrong, HELLO AUTH, ACL SETUSER >pass, a
    # malformed ACL rule carrying a password, a protocol error right after AUTH.
    with socket.create_connection(broker.resp, timeout=TIMEOUT) as sock:
        sock.sendall(f"AUTH alice {WRONG_PASSWORD}\r\nAUTH {WRONG_PASSWORD}\r\nHELLO 3 AUTH ops {WRONG_PASSWORD}\r\n"
                     f"AUTH ops {OPS_PASSWORD}\r\nACL SETUSER dave on >{NEW_PASSWORD} +bad\r\n"
                     f"ACL SETUSER dave on >{NEW_PASSWORD}\r\nACL DELUSER dave\r\n*1\r\n$x\r\n".encode())
        received = b""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        assert b"Protocol error" in received
    assert cli(broker, "PING", user="alice", password=ALICE_PASSWORD) == "PONG"
    deadline = time.monotonic() + TIMEOUT
    while not any(line.get("event") == "protocol_error" for line in broker.log_lines()):
        assert time.monotonic() < deadline, "the broker never logged the protocol error"
        time.sleep(0.05)
    text = broker.log_text()
    assert "auth_failed" in text  # the failures were logged ...
    for secret in SECRETS:
        assert secret not in text  # ... without any password
