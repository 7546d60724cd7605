"""Measured scenarios against brokers compare did not start: a real redis-server for push mode
(``--resp``) and a separately started ``dualmq serve`` standing in for a Kafka broker (``--kafka``).

The command is the one a user runs to check the article against the real systems; here with a
small count and no minimum duration (CI time).
"""

from __future__ import annotations

import argparse
import json

import pytest

from bench._common import start_redis, stop_process
from dualmq.compare import command
from tests.support import broker_process, require_binary


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    command.add_parsers(parser.add_subparsers())
    args = parser.parse_args(["compare", *argv])
    return args.handler(args)


@pytest.mark.timeout(120)
def test_baseline_against_redis_server_and_an_external_kafka_broker(tmp_path, capsys) -> None:
    require_binary("redis-server", "redis-server")
    (tmp_path / "redis").mkdir()
    redis, redis_port = start_redis(tmp_path / "redis", ["--save", "", "--appendonly", "no"])
    try:
        with broker_process(tmp_path) as kafka:
            out = tmp_path / "external.json"
            status = _run("baseline", "--kafka", kafka.kafka_address, "--resp", f"127.0.0.1:{redis_port}",
                          "--seconds", "0", "--messages", "3000", "--runs", "1", "--json", str(out))
    finally:
        stop_process(redis)
    assert status == 0
    (baseline,) = json.loads(out.read_text())["sweeps"]
    assert baseline["broker"] == "external"
    for mode in ("pull", "push"):
        (run,) = baseline["points"][0]["modes"][mode]["runs"]
        assert run["sent"] == 3000 and run["delivered"] == 3000 and run["duplicated"] == 0, (mode, run)
    assert "broker: external" in capsys.readouterr().out


@pytest.mark.timeout(120)
def test_only_the_given_external_mode_runs(tmp_path, capsys) -> None:
    require_binary("redis-server", "redis-server")
    (tmp_path / "redis").mkdir()
    redis, redis_port = start_redis(tmp_path / "redis", ["--save", "", "--appendonly", "no"])
    try:
        status = _run("baseline", "--resp", f"127.0.0.1:{redis_port}", "--seconds", "0", "--messages", "2000",
                      "--runs", "1")
    finally:
        stop_process(redis)
    out = capsys.readouterr().out
    assert status == 0
    assert "push " in out and [line for line in out.splitlines() if line.startswith("1 to 1, 100 B") and " pull " in line] == []


@pytest.mark.timeout(120)
def test_push_mode_against_a_server_that_wants_a_password(tmp_path, capsys) -> None:
    """--resp-user / --resp-password reach every push client: the in-process ones and the role
    processes (through their environment, never their command line)."""
    config = tmp_path / "locked.toml"
    config.write_text('[resp]\nrequirepass = "default-pw"\n\n[[resp.users]]\nname = "bench"\n'
                      'password = "bench-pw"\nrules = "on +@all allchannels"\n')
    with broker_process(tmp_path, "--config", str(config)) as locked:
        address = f"{locked.resp[0]}:{locked.resp[1]}"
        status = _run("baseline", "--resp", address, "--resp-user", "bench", "--resp-password", "bench-pw",
                      "--seconds", "0", "--messages", "500", "--runs", "1", "--json", str(tmp_path / "out.json"))
        assert status == 0, capsys.readouterr().err
        (baseline,) = json.loads((tmp_path / "out.json").read_text())["sweeps"]
        (run,) = baseline["points"][0]["modes"]["push"]["runs"]
        assert run["sent"] == 500 and run["delivered"] == 500
        status = _run("late-joiner", "--resp", address, "--resp-user", "bench", "--resp-password", "bench-pw",
                      "--messages", "200")
        printed = capsys.readouterr()
        assert status == 0, printed.err
        assert "AUTH as ACL user bench" in printed.out  # the guarantee receipt names the security used
        refused = _run("baseline", "--resp", address, "--seconds", "0", "--messages", "100", "--runs", "1")
        assert refused != 0
        assert "requires a password" in capsys.readouterr().err
        assert "bench-pw" not in locked.log_text()
    assert _run("baseline", "--resp-user", "x", "--resp-password", "y") == 2
