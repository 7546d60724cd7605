"""Errors that tell the user what to do, in one line on standard error, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.support import broker_process


def dualmq(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualmq", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dualmq: error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with broker_process(tmp_path_factory.mktemp("cli-errors")) as running:
        yield running


@pytest.mark.parametrize("taken", ["kafka", "resp", "http"])
def test_a_port_in_use_names_the_listener_and_says_what_to_do(tmp_path, taken: str) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        addresses = {"kafka": "127.0.0.1:0", "resp": "127.0.0.1:0", "http": "127.0.0.1:0", taken: f"127.0.0.1:{port}"}
        result = dualmq("serve", "--data-dir", str(tmp_path / "data"), "--kafka", addresses["kafka"],
                        "--resp", addresses["resp"], "--http", addresses["http"], "--log-level", "warning")
    line = one_error_line(result)
    name = {"kafka": "Kafka", "resp": "RESP", "http": "HTTP"}[taken]
    assert f"the {name} listener cannot listen on 127.0.0.1:{port}: Address already in use" in line
    assert f"--{taken} HOST:PORT" in line and "port 0" in line


def test_kafka_commands_at_the_resp_port_say_so_in_one_line(broker) -> None:
    line = one_error_line(dualmq("topics", "list", "--kafka", broker.resp_address, timeout=30))
    assert "speaks RESP" in line and "--kafka" in line
    line = one_error_line(dualmq("publish", "--resp", broker.kafka_address, "news", "hi", timeout=30))
    assert "does not speak RESP" in line and "--resp" in line


@pytest.mark.parametrize("command", [["topics", "list", "--kafka", "127.0.0.1:1"],
                                     ["consume", "t", "--kafka", "127.0.0.1:1"],
                                     ["publish", "--resp", "127.0.0.1:1", "news", "hi"]])
def test_no_broker_reachable_suggests_starting_one(command: list[str]) -> None:
    line = one_error_line(dualmq(*command))
    assert "127.0.0.1:1" in line and "`dualmq serve` starts one" in line


def test_a_config_value_of_the_wrong_type_states_the_real_range(tmp_path) -> None:
    config = tmp_path / "dualmq.toml"
    config.write_text('[log]\nretention_ms = "week"\n')
    result = dualmq("serve", "--config", str(config), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("dualmq: error: log.retention_ms = 'week': expected an integer in "
                                     "[0, 9223372036854775807] or -1")


def test_a_topic_config_of_the_wrong_type_states_the_real_range(broker) -> None:
    line = one_error_line(dualmq("topics", "create", "weekly", "--kafka", broker.kafka_address,
                                 "--config", "retention.ms=week"))
    assert "retention.ms = 'week': expected an integer in [0, 9223372036854775807] or -1" in line
