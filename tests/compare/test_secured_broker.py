"""``dualmq compare`` against secured brokers: SASL_SSL with ACLs (pull), TLS with ACL users (push).

One ``dualmq serve`` (certificates made per run with ``openssl``) holds three users: ``admin``
(Kafka super user), ``alice`` (Kafka ACLs on the ``compare-`` topics and groups; RESP channels
``compare-*``), ``bob`` (a valid password, no Kafka ACL, RESP channels ``other-*`` only) and
``carol`` (may create and write compare's topics, not read them). A
real ``redis-server`` with TLS and ACL users stands in for the "real Redis" a user points
compare at. Runs are short (``--seconds 0``, a few hundred messages, ``--runs 1``): what is
checked is who gets in, what the receipt says, and that the password shows up nowhere.
"""

from __future__ import annotations

import argparse
import json

import pytest
import trio

from bench._common import free_port, start_redis, stop_process
from dualmq.compare import command
from dualmq.compare.security import ENVIRONMENT_VARIABLE, ClientSecurity, denied
from dualmq.errors import AuthenticationError, KafkaError, ServerError
from dualmq.pull import Acl, Admin
from tests.certificates import make_certificates
from tests.support import broker_process, require_binary

PASSWORDS = {"admin": "admin-Pw-81d2", "alice": "alice-Pw-5c7e", "bob": "bob-Pw-29af", "carol": "carol-Pw-c4d1"}
SHORT = ("--seconds", "0", "--messages", "300", "--runs", "1")


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    command.add_parsers(parser.add_subparsers())
    args = parser.parse_args(["compare", *argv])
    return args.handler(args)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("compare-secured")
    certs = make_certificates(workdir / "certs")
    kafka_users = "".join(f'[[kafka.users]]\nname = "{n}"\npassword = "{p}"\n' for n, p in PASSWORDS.items())
    config = workdir / "secured.toml"
    config.write_text(
        '[kafka]\nsecurity_protocol = "SASL_SSL"\nauthorizer = true\nsuper_users = ["User:admin"]\n'
        f'{kafka_users}'
        '[resp]\ntls = true\nrequirepass = "default-Pw-0a1b"\n'
        f'[[resp.users]]\nname = "alice"\npassword = "{PASSWORDS["alice"]}"\nrules = "on +@all &compare-*"\n'
        f'[[resp.users]]\nname = "bob"\npassword = "{PASSWORDS["bob"]}"\nrules = "on +@all &other-*"\n'
        f'[tls]\ncert_file = "{certs.cert_file}"\nkey_file = "{certs.key_file}"\n')
    with broker_process(workdir, "--config", str(config)) as broker:
        trio.run(_grant, broker.kafka_address, str(certs.ca_file))
        yield broker, certs


async def _grant(kafka: str, ca_file: str) -> None:
    """alice: what compare needs in pull mode, its topics (create, write, read) and its groups
    (commits); carol: all but reading."""
    bindings = [Acl("User:alice", operation, "topic", "compare-", pattern="prefixed")
                for operation in ("create", "describe", "write", "read")]
    bindings.append(Acl("User:alice", "read", "group", "compare-", pattern="prefixed"))
    bindings += [Acl("User:carol", operation, "topic", "compare-", pattern="prefixed")
                 for operation in ("create", "describe", "write")]
    async with Admin(kafka, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="admin",
                     sasl_plain_password=PASSWORDS["admin"], ssl_cafile=ca_file) as admin:
        await admin.create_acls(bindings)


def _address(broker, mode: str) -> list[str]:
    """``--kafka ADDRESS`` or ``--resp ADDRESS`` of the broker, for ``mode``."""
    if mode == "pull":
        return ["--kafka", broker.kafka_address]
    return ["--resp", f"{broker.resp[0]}:{broker.resp[1]}"]


@pytest.mark.timeout(180)
def test_baseline_and_late_joiner_log_in_everywhere_and_deliver_everything(secured, tmp_path, capsys, monkeypatch):
    broker, certs = secured
    spawned: list[tuple[list[str], dict]] = []
    open_process = trio.lowlevel.open_process

    async def recording(argv, **kwargs):
        spawned.append((list(argv), dict(kwargs.get("env") or {})))
        return await open_process(argv, **kwargs)

    monkeypatch.setattr(trio.lowlevel, "open_process", recording)
    out = tmp_path / "secured.json"
    status = _run("baseline", "late-joiner", *_address(broker, "pull"), *_address(broker, "push"), "--user", "alice", "--password", PASSWORDS["alice"],
                  "--ca-file", str(certs.ca_file), *SHORT, "--json", str(out))
    printed = capsys.readouterr()
    assert status == 0, printed.err
    document = json.loads(out.read_text())
    (baseline,) = document["sweeps"]
    for mode in ("pull", "push"):
        (run,) = baseline["points"][0]["modes"][mode]["runs"]
        assert run["sent"] == 300 and run["delivered"] == 300 and run["duplicated"] == 0, (mode, run)
    assert baseline["authentication"] == {"pull": "SASL SCRAM-SHA-256 as user alice; over TLS",
                                          "push": "AUTH as ACL user alice; over TLS"}
    (late,) = document["scenarios"]
    pull, push = late["modes"]["pull"], late["modes"]["push"]
    assert pull["sent"] == 300 and pull["delivered"] == 300 and pull["lost"] == 0
    assert push["delivered"] > 0 and push["lost"] == 0   # the late joiner misses the first half, as designed
    assert pull["guarantees"]["authentication"] == "SASL SCRAM-SHA-256 as user alice; over TLS"
    assert push["guarantees"]["authentication"] == "AUTH as ACL user alice; over TLS"
    assert "clients' login: pull SASL SCRAM-SHA-256 as user alice; over TLS; push AUTH as ACL user alice" in printed.out
    # Every role process (2 modes x a producer and a consumer process) got its login from its
    # environment; none had the password on its command line, which ps shows to everyone.
    assert len(spawned) == 4
    for argv, env in spawned:
        assert PASSWORDS["alice"] not in " ".join(argv)
        options = json.loads(env[ENVIRONMENT_VARIABLE])
        assert "alice" in (options.get("sasl_plain_username"), options.get("username")), options
    for text in (printed.out, printed.err, out.read_text(), broker.log_text()):
        assert PASSWORDS["alice"] not in text


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["pull", "push"])
def test_a_wrong_password_is_one_line_naming_the_mode(secured, capsys, mode):
    broker, certs = secured
    flag, address = _address(broker, mode)
    status = _run("baseline", flag, address, "--user", "alice", "--password", "not-Alice-Pw-77",
                  "--ca-file", str(certs.ca_file), *SHORT)
    err = capsys.readouterr().err
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("dualmq compare:")]
    assert errors == [line for line in errors if line.startswith(f"dualmq compare: {mode} mode ({flag} {address}): ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert ("Authentication failed" if mode == "pull" else "WRONGPASS") in errors[0]
    assert "not-Alice-Pw-77" not in err


@pytest.mark.timeout(90)
@pytest.mark.parametrize("scenario", ["baseline", "late-joiner"])   # role processes / in-process clients
@pytest.mark.parametrize("mode", ["pull", "push"])
def test_a_user_without_permission_on_compares_topic_or_channel_is_refused_clearly(secured, capsys, mode, scenario):
    """bob logs in (his password is right) but may not use compare's topic / channel: one line
    naming the mode and Kafka's or Redis's own refusal, not messages counted as lost."""
    broker, certs = secured
    flag, address = _address(broker, mode)
    status = _run(scenario, flag, address, "--user", "bob", "--password", PASSWORDS["bob"],
                  "--ca-file", str(certs.ca_file), *SHORT)
    printed = capsys.readouterr()
    assert status == 1
    errors = [line for line in printed.err.splitlines() if line.startswith("dualmq compare:")]
    assert len(errors) == 1 and "Traceback" not in printed.err, printed.err
    assert errors[0].startswith(f"dualmq compare: {mode} mode ({flag} {address}): ")
    assert ("TOPIC_AUTHORIZATION_FAILED" if mode == "pull" else "NOPERM") in errors[0]
    assert "verdict" not in printed.out   # no report of a run that never ran


@pytest.mark.timeout(90)
def test_a_consumer_role_refused_read_ends_the_measurement_with_one_line(secured, capsys):
    """carol creates the topic and produces, but her consumer process is refused its first Fetch:
    the role says so and the coordinator reports it (it used to trip over the role's closed stdin)."""
    broker, certs = secured
    status = _run("baseline", "--kafka", broker.kafka_address, "--user", "carol", "--password", PASSWORDS["carol"],
                  "--ca-file", str(certs.ca_file), *SHORT)
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err, err
    assert f"dualmq compare: pull mode (--kafka {broker.kafka_address}): TOPIC_AUTHORIZATION_FAILED: Fetch " in err


@pytest.mark.timeout(120)
def test_push_mode_against_a_real_redis_server_with_tls_and_acl_users(secured, tmp_path, capsys):
    require_binary("redis-server", "redis-server")
    _, certs = secured
    tls_port = free_port()
    # The plaintext port lets start_redis see it is up (default may only PING); compare uses TLS.
    redis, _ = start_redis(tmp_path, [
        "--save", "", "--appendonly", "no", "--tls-port", str(tls_port),
        "--tls-cert-file", str(certs.cert_file), "--tls-key-file", str(certs.key_file),
        "--tls-ca-cert-file", str(certs.ca_file), "--tls-auth-clients", "no",
        "--user", "default", "on", "nopass", "-@all", "+ping",
        "--user", "alice", "on", f">{PASSWORDS['alice']}", "+@all", "&compare-*"])
    try:
        resp = f"127.0.0.1:{tls_port}"
        status = _run("late-joiner", "--resp", resp, "--user", "alice", "--password", PASSWORDS["alice"],
                      "--ca-file", str(certs.ca_file), "--messages", "300")
        printed = capsys.readouterr()
        assert status == 0, printed.err
        assert "authentication                 AUTH as ACL user alice; over TLS" in printed.out
        wrong = _run("late-joiner", "--resp", resp, "--user", "alice", "--password", "x", "--ca-file", str(certs.ca_file))
        err = capsys.readouterr().err
        assert wrong == 1 and f"dualmq compare: push mode (--resp {resp}): " in err and "WRONGPASS" in err, err
    finally:
        stop_process(redis)
    assert PASSWORDS["alice"] not in printed.out + printed.err


@pytest.mark.parametrize(("argv", "expected"), [
    (["--tls"], "--tls: only for brokers given with --kafka / --resp"),
    (["--user", "alice", "--password", "pw", "--ca-file", "ca.crt"],
     "--user / --password / --ca-file: only for brokers given with --kafka / --resp"),
    (["--resp", "127.0.0.1:1", "--user", "alice"], "--user needs --password or $DUALMQ_PASSWORD"),
])
def test_usage_errors(argv, expected, capsys, monkeypatch):
    monkeypatch.delenv("DUALMQ_PASSWORD", raising=False)
    assert _run("baseline", *argv) == 2
    assert capsys.readouterr().err.startswith(f"dualmq compare: {expected}")


def test_an_unknown_sasl_mechanism_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        _run("baseline", "--kafka", "127.0.0.1:1", "--user", "a", "--password", "b", "--sasl-mechanism", "GSSAPI")
    assert exit_.value.code == 2 and "invalid choice: 'GSSAPI'" in capsys.readouterr().err


@pytest.mark.timeout(30)
def test_a_ca_file_that_cannot_be_read_is_one_line(secured, tmp_path, capsys):
    broker, _ = secured
    garbage = tmp_path / "ca.crt"
    garbage.write_bytes(b"\x00not a certificate\xff" * 100)
    status = _run("baseline", "--kafka", broker.kafka_address, "--ca-file", str(garbage), *SHORT)
    err = capsys.readouterr().err
    assert status == 1 and "dualmq compare: pull mode (--kafka " in err and "cannot load the TLS CA" in err, err
    assert "Traceback" not in err


def test_client_security_never_shows_the_password_and_round_trips_through_the_environment(monkeypatch):
    security = ClientSecurity(
        kafka={"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_plain_username": "u",
               "sasl_plain_password": "hunter2"},
        resp={"username": None, "password": "hunter2", "ssl": True, "ssl_certfile": "c.crt"})
    assert security.describe("pull") == "SASL PLAIN as user u; no TLS"
    assert security.describe("push") == "AUTH as ACL user default; over TLS with a client certificate"
    assert ClientSecurity().describe("pull") == "none (no SASL); no TLS"
    assert ClientSecurity().describe("push") == "none (the default user, no password); no TLS"
    assert "hunter2" not in repr(security)
    assert ClientSecurity().environment("push") == {}
    from dualmq.compare.security import role_options

    monkeypatch.setenv(ENVIRONMENT_VARIABLE, security.environment("pull")[ENVIRONMENT_VARIABLE])
    assert role_options() == security.kafka
    monkeypatch.delenv(ENVIRONMENT_VARIABLE)
    assert role_options() == {}


def test_denied_tells_refusals_from_the_errors_a_scenario_measures():
    assert denied(AuthenticationError("refused"))
    assert denied(KafkaError(29)) and denied(KafkaError(30)) and denied(KafkaError(31)) and denied(KafkaError(58))
    assert denied(ServerError("NOPERM this user has no permissions to access one of the channels"))
    assert not denied(KafkaError(6))            # NOT_LEADER_OR_FOLLOWER: a broker restart, measured
    assert not denied(ServerError("ERR unknown command"))
