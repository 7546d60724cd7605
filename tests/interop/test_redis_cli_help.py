"""redis-cli's interactive help and hints come from the server: dualmq's show what Redis's do.

redis-cli 7 asks the server for COMMAND DOCS when it starts interactively and builds its
``help <command>`` pages and its typing hints (``spublish`` -> ``shardchannel message``)
from the reply. Run in a pseudo-terminal (it only does this on a terminal) against a real
redis-server and against dualmq, the same keystrokes must print the same help. CLIENT
NO-TOUCH, which redis-server 7.0.15 lacks, gets a help page from dualmq: proof that the
pages come from the server's reply, not from redis-cli's own table.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import time

import pytest

from tests.interop.differential import servers_for
from tests.support import require_binary

pytestmark = pytest.mark.interop

QUIET_SECONDS = 0.4
TIMEOUT = 10.0
_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def _interactive(port: int, keystrokes: list[bytes]) -> str:
    """What redis-cli prints, escape codes removed, for each line typed in a pseudo-terminal."""
    binary = require_binary("redis-cli", "redis-tools")
    pid, fd = pty.fork()
    if pid == 0:  # the child: redis-cli on the terminal's other end, 40 x 200 characters
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
        os.execv(binary, [binary, "-h", "127.0.0.1", "-p", str(port)])
    output = b""

    def read_until_quiet() -> None:
        nonlocal output
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], QUIET_SECONDS)
            if not ready:
                return
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            output += chunk

    try:
        read_until_quiet()
        for keys in keystrokes:
            os.write(fd, keys)
            read_until_quiet()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    text = _ESCAPES.sub(b"", output).decode(errors="replace")
    # Drop the prompt, which names the port.
    return re.sub(r"127\.0\.0\.1:\d+> ", "> ", text)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    with servers_for(tmp_path_factory.mktemp("redis-cli-help")) as running:
        yield running


def test_help_pages_and_hints_match_redis(servers) -> None:
    keystrokes = [b"help publish\r", b"help spublish\r", b"help pubsub shardnumsub\r", b"help config set\r",
                  b"help client pause\r", b"help flushall\r", b"spublish ", b"\x15", b"ssubscribe "]
    from_redis = _interactive(servers.redis[1], keystrokes)
    from_dualmq = _interactive(servers.dualmq[1], keystrokes)
    assert "summary: Post a message to a shard channel" in from_redis
    assert "ssubscribe shardchannel [shardchannel ...]" in from_redis.lower()
    assert from_dualmq == from_redis


def test_help_for_a_subcommand_redis_7_0_lacks_comes_from_dualmq(servers) -> None:
    text = _interactive(servers.dualmq[1], [b"help client no-touch\r"])
    assert "CLIENT NO-TOUCH ON|OFF" in text and "since: 7.2.0" in text
