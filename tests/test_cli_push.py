"""``dualmq publish`` and ``dualmq subscribe`` against a running broker."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.support import broker_process


def dualmq(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualmq", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_publish_with_nobody_subscribed_says_the_message_is_gone(tmp_path) -> None:
    with broker_process(tmp_path) as broker:
        result = dualmq("publish", "--resp", f"{broker.resp[0]}:{broker.resp[1]}", "news", "hi")
        assert result.returncode == 0, result.stderr
        assert "delivered to 0 subscribers" in result.stdout and "gone" in result.stdout


def test_subscribe_prints_what_publish_sends(tmp_path) -> None:
    with broker_process(tmp_path) as broker:
        address = f"{broker.resp[0]}:{broker.resp[1]}"
        subscriber = subprocess.Popen(
            [sys.executable, "-m", "dualmq", "subscribe", "--resp", address, "news", "--pattern", "n*", "--max", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while True:  # publish until the subscriber is live
                result = dualmq("publish", "--resp", address, "news", "hello")
                if "delivered to 2" in result.stdout:
                    break
                assert time.monotonic() < deadline, "subscriber never became live"
                time.sleep(0.1)
            out, err = subscriber.communicate(timeout=20)
        finally:
            if subscriber.poll() is None:
                subscriber.kill()
                subscriber.wait(10)
        assert subscriber.returncode == 0, err
        assert out.splitlines() == ["news\thello", "news\thello"]


def test_unreachable_broker_is_one_line_error_not_traceback() -> None:
    result = dualmq("publish", "--resp", "127.0.0.1:1", "news", "hi")
    assert result.returncode == 1
    assert result.stderr.startswith("dualmq: error:")
    assert "Traceback" not in result.stderr


def test_subscribe_needs_a_channel() -> None:
    result = dualmq("subscribe")
    assert result.returncode == 2
    assert "CHANNEL" in result.stderr
