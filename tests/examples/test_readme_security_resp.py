"""The README's "Push mode (RESP)" security session runs as written and prints what it shows.

The subsection's TOML block becomes the broker's config file (listening on a free port
instead of 6379); every ``$`` line of its console block is run — redis-cli against that
port, ``dualmq publish`` with ``--resp`` pointing there — and its output compared with the
lines the README shows under it. redis-cli prints ``(integer) 0`` and ``(error) ...`` on a
terminal and ``0`` / ``...`` into a pipe; the README shows the terminal's form, so those
prefixes (and the ``1) "..."`` of arrays) are taken off before comparing.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

from tests.examples.helpers import REPO
from tests.support import broker_process, require_binary

SECTION = "### Push mode (RESP)"


def _section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = re.search(r"^##+ ", text[start + len(SECTION):], re.M)
    end = start + len(SECTION) + end.start() if end else len(text)
    return text[start:end]


def _block(section: str, language: str) -> str:
    match = re.search(rf"^```{language}\n(.*?)^```", section, re.S | re.M)
    assert match, f"no {language} block in the README's {SECTION!r}"
    return match.group(1)


def _session(block: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for every ``$`` line."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def _as_piped(line: str) -> str:
    """A terminal's redis-cli line as redis-cli prints it into a pipe."""
    line = re.sub(r"^\((integer|error)\) ", "", line)
    match = re.fullmatch(r'\d+\) "(.*)"', line)
    return match.group(1) if match else line


def test_the_resp_security_session_runs_as_written(tmp_path) -> None:
    section = _section()
    (tmp_path / "secure.toml").write_text(_block(section, "toml"))
    steps = _session(_block(section, "console"))
    assert steps[0][0] == ".venv/bin/dualmq serve --config secure.toml"
    redis_cli = require_binary("redis-cli", "redis-tools")
    with broker_process(tmp_path, "--config", str(tmp_path / "secure.toml")) as broker:
        host, port = broker.resp
        for command, expected in steps[1:]:
            words = shlex.split(command)
            env = dict(os.environ)
            while "=" in words[0]:
                name, _, value = words.pop(0).partition("=")
                env[name] = value
            if words[0] == "redis-cli":
                argv = [redis_cli, "-h", host, "-p", str(port), *words[1:]]
            else:
                assert words[:2] == [".venv/bin/dualmq", "publish"], command
                argv = [sys.executable, "-m", "dualmq", "publish", "--resp", f"{host}:{port}", *words[2:]]
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env,
                                    stdin=subprocess.DEVNULL)
            output = (result.stdout + result.stderr).rstrip("\n").splitlines()
            assert output == [_as_piped(line) for line in expected], command
