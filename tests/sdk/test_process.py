"""``dualmq.process``: a ``dualmq serve`` child process started on port 0, stopped, killed, restarted."""

from __future__ import annotations

import json
import signal

import pytest
import trio

from dualmq.errors import DualmqError
from dualmq.process import BrokerProcess, BrokerStartError
from dualmq.push import Publisher
from tests.support import RawClient

pytestmark = pytest.mark.timeout(60)


def ping(broker: BrokerProcess) -> None:
    with RawClient(broker.resp) as client:
        client.send(b"PING\r\n")
        client.expect(b"+PONG\r\n")


def test_starts_on_free_ports_and_stops_gracefully(tmp_path) -> None:
    broker = BrokerProcess(tmp_path / "data", log_level="debug")
    assert not broker.running and broker.kafka_address == "127.0.0.1:0"
    with broker:
        assert broker.running and broker.kafka[1] > 0 and broker.resp[1] > 0
        assert broker.ready["pid"] == broker.pid
        assert json.loads(broker.ready_file.read_text())["kafka"] == broker.kafka_address
        assert 0 < broker.ready_seconds < 20
        ping(broker)
    assert not broker.running and broker.process.returncode == 0
    assert not broker.ready_file.exists()  # a graceful stop removes it
    assert broker.log_path == tmp_path / "data.log"
    events = [line.get("event") for line in broker.log_lines()]
    assert "broker_started" in events and "broker_stopped" in events


def test_killed_broker_restarts_on_the_same_ports_and_data(tmp_path) -> None:
    with BrokerProcess(tmp_path / "data", "--fsync", "always") as broker:
        first_pid, kafka, resp = broker.pid, broker.kafka_address, broker.resp_address
        assert broker.kill() == -signal.SIGKILL
        assert broker.ready_file.exists()  # left behind by the crash: start() must not trust it
        broker.start()
        assert (broker.kafka_address, broker.resp_address) == (kafka, resp)
        assert broker.pid != first_pid and broker.ready["pid"] == broker.pid and broker.starts == 2
        ping(broker)
        with pytest.raises(RuntimeError, match="already running"):
            broker.start()
    assert broker.stop() == 0  # stopping a stopped broker is harmless


def test_the_current_directory_cannot_shadow_the_installed_package(tmp_path, monkeypatch) -> None:
    # A folder called "dualmq" where the script runs: "python -m dualmq" would import it
    # instead of the real package and never start a broker.
    impostor = tmp_path / "cwd" / "dualmq"
    impostor.mkdir(parents=True)
    (impostor / "__init__.py").write_text("")
    (impostor / "__main__.py").write_text("raise SystemExit('the impostor ran')\n")
    monkeypatch.chdir(impostor.parent)
    with BrokerProcess(tmp_path / "data") as broker:
        ping(broker)
    assert "impostor" not in broker.log_text()


def test_a_broker_that_exits_at_start_raises_with_its_log(tmp_path) -> None:
    broker = BrokerProcess(tmp_path / "data", "--fsync", "sometimes")
    with pytest.raises(BrokerStartError, match="exited with status 2") as info:
        broker.start()
    assert "invalid choice: 'sometimes'" in str(info.value)
    assert isinstance(info.value, DualmqError)


def test_a_broker_not_ready_in_time_is_killed(tmp_path) -> None:
    broker = BrokerProcess(tmp_path / "data")
    with pytest.raises(BrokerStartError, match="not ready within the timeout"):
        broker.start(timeout=0)
    assert not broker.running and broker.process.returncode == -signal.SIGKILL


async def test_async_use_stops_the_broker_when_the_block_is_cancelled(tmp_path) -> None:
    broker = BrokerProcess(tmp_path / "data")
    with trio.move_on_after(10) as scope:
        async with broker:
            async with Publisher(broker.resp_address) as publisher:
                assert await publisher.publish("news", "hi") == 0
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert not broker.running and broker.process.returncode == 0
    await broker.start_async()
    assert await broker.stop_async(signal.SIGINT) == 130  # dualmq serve: 130 after Ctrl-C
