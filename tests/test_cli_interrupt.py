"""Ctrl-C: every long-running ``dualmq`` command exits with status 130 and no traceback, and
``produce`` sends what was typed first (interactive, through a real pseudo-terminal).

Kafka's console producer users quit with Ctrl-C; a shell (and ``make``, ``set -e`` scripts)
reads 130 as "interrupted by the user". Every wait here has a deadline.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time

import pytest
import trio

from dualmq.cli import _interrupted
from dualmq.pull import Admin
from tests.support import broker_process, fast_groups_broker

pytestmark = pytest.mark.timeout(120)

DEADLINE_S = 30


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with fast_groups_broker(tmp_path_factory.mktemp("cli-interrupt")) as running:
        yield running


def dualmq_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dualmq", *args]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(dualmq_command(*args), input=stdin, capture_output=True, text=True, timeout=60)


def record_count(kafka: str, topic: str) -> int:
    async def count() -> int:
        async with Admin(kafka) as admin:
            names = await admin.list_topics()
            return (await admin.describe_topics(topic))[0].messages if topic in names else 0

    return trio.run(count)


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def interrupt(process: subprocess.Popen) -> tuple[int, str, str]:
    """SIGINT, as Ctrl-C sends it; returns (exit status, stdout, stderr)."""
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return process.returncode, out, err


def test_an_interrupt_inside_trio_exception_groups_is_recognised() -> None:
    assert _interrupted(KeyboardInterrupt())
    assert _interrupted(BaseExceptionGroup("trio", [BaseExceptionGroup("inner", [KeyboardInterrupt()])]))
    assert not _interrupted(ExceptionGroup("trio", [ValueError("a bug")]))


def test_serve_exits_130_on_sigint_and_0_on_sigterm(tmp_path) -> None:
    with broker_process(tmp_path, data_dir=tmp_path / "a") as first:
        assert first.stop(signal.SIGINT) == 130
        assert "Traceback" not in first.log_text()
        assert "broker_stopped" in first.log_text()  # a clean shutdown all the same
    with broker_process(tmp_path, data_dir=tmp_path / "b") as second:
        assert second.stop(signal.SIGTERM) == 0


def test_consume_exits_130_and_a_group_member_commits_what_it_printed(broker) -> None:
    kafka = broker.kafka_address
    assert run("produce", "-b", kafka, "interrupted-consume", stdin="a\nb\n").returncode == 0
    process = subprocess.Popen(dualmq_command("consume", "-b", kafka, "interrupted-consume", "--group", "ctrl-c",
                                              "--from-beginning"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    printed = []
    deadline = time.monotonic() + DEADLINE_S
    while len(printed) < 2:  # both printed: the consumer is in its loop
        assert time.monotonic() < deadline, "consume printed nothing"
        printed.append(process.stdout.readline().strip())
    status, out, err = interrupt(process)
    assert (status, printed, "Traceback" in err) == (130, ["a", "b"], False), err
    # The group resumes after what was printed: the interrupted run committed it.
    assert run("produce", "-b", kafka, "interrupted-consume", stdin="c\n").returncode == 0
    resumed = run("consume", "-b", kafka, "interrupted-consume", "--group", "ctrl-c", "--max", "1")
    assert resumed.stdout.splitlines() == ["c"]


def test_subscribe_exits_130_without_a_traceback(broker) -> None:
    process = subprocess.Popen(dualmq_command("subscribe", "--resp", broker.resp_address, "news"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    first_line = process.stderr.readline()  # "subscribed to news; waiting for messages"
    assert first_line.startswith("subscribed to news"), first_line
    status, _out, err = interrupt(process)
    assert (status, "Traceback" in err) == (130, False), err


def test_piped_produce_sends_what_it_read_before_ctrl_c(broker) -> None:
    kafka = broker.kafka_address
    process = subprocess.Popen(dualmq_command("produce", "-b", kafka, "interrupted-pipe"), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdin.write("sent before ctrl-c\n")
    process.stdin.flush()
    wait_until(lambda: record_count(kafka, "interrupted-pipe") == 1, "the line to reach the broker")
    status, _out, err = interrupt(process)  # stdin is still open: the producer was waiting for more
    assert (status, "Traceback" in err) == (130, False), err
    assert "produced 1 record to interrupted-pipe" in err


def _read_until(fd: int, wanted: bytes, seen: bytearray) -> None:
    """Read the pty master into ``seen`` until ``wanted`` appears after what was there before."""
    start = len(seen)
    deadline = time.monotonic() + DEADLINE_S
    while wanted not in seen[start:]:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {wanted!r} in {bytes(seen)!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            assert chunk, f"terminal closed before {wanted!r}: {bytes(seen)!r}"
            seen += chunk


def test_interactive_produce_prompts_and_ctrl_c_sends_what_was_typed(broker) -> None:
    # A real terminal: the child gets a pseudo-terminal as its controlling terminal (a new
    # session, then TIOCSCTTY), so the \x03 written below is turned into SIGINT by the
    # terminal's line discipline, exactly as when a user presses Ctrl-C.
    kafka = broker.kafka_address
    master, slave = pty.openpty()
    producer = subprocess.Popen(dualmq_command("produce", "-b", kafka, "typed"), stdin=slave, stdout=slave,
                                stderr=slave, start_new_session=True,
                                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    seen = bytearray()
    try:
        for line in (b"first line", b"second line"):
            _read_until(master, b"> ", seen)   # the prompt asks for a line
            os.write(master, line + b"\n")
        _read_until(master, b"> ", seen)
        os.write(master, b"\x03")               # Ctrl-C
        status = producer.wait(DEADLINE_S)
        try:
            while chunk := os.read(master, 4096):
                seen += chunk
        except OSError:  # EIO once the producer has exited and the terminal is closed
            pass
    finally:
        os.close(master)
        if producer.poll() is None:
            producer.kill()
            producer.wait(10)
    assert status == 130, bytes(seen)
    assert b"produced 2 records to typed" in seen and b"Traceback" not in seen
    consumed = run("consume", "-b", kafka, "typed", "--from-beginning", "--max", "2")
    assert consumed.stdout.splitlines() == ["first line", "second line"]
