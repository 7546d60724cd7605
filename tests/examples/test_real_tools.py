"""``examples/10_real_tools.md`` is executable documentation: run its ``sh`` blocks for real.

Each fenced ``sh`` block is run, in document order, by bash against one fresh ``dualmq serve``
on free loopback ports (``RESP_PORT`` and ``KAFKA_PORT`` in the environment, as the page tells
the reader to set them), in a scratch directory that has a ``.venv`` like the repository's (a
link to this interpreter's virtual environment), so ``.venv/bin/dualmq`` runs as written. Every block must exit 0 and print each ``<!-- expect: ... -->``
fragment that follows it (before the next ``sh`` block). Other fences (``console``, ``text``)
are illustration only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples.helpers import EXAMPLES, example_env
from tests.support import broker_process, require_binary

pytestmark = pytest.mark.interop

DOC = EXAMPLES / "10_real_tools.md"
BLOCK_TIMEOUT_SECONDS = 30
_SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
_EXPECT = re.compile(r"<!-- expect: (.*?) -->", re.S)


def runnable_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(script, expected fragments) for every ``sh`` block of the page, in order."""
    matches = list(_SH_BLOCK.finditer(text))
    blocks = []
    for i, match in enumerate(matches):
        following = text[match.end(): matches[i + 1].start() if i + 1 < len(matches) else len(text)]
        blocks.append((match.group(1), _EXPECT.findall(following)))
    return blocks


def test_the_page_has_runnable_blocks_with_expectations() -> None:
    blocks = runnable_blocks(DOC.read_text())
    assert len(blocks) >= 8
    assert all(expected for _, expected in blocks), "every sh block needs at least one expect line"
    assert any("redis-cli" in s for s, _ in blocks)
    assert any("redis-benchmark" in s for s, _ in blocks)
    assert any("kcat" in s for s, _ in blocks)


def test_every_command_of_10_real_tools_runs_and_prints_what_the_page_says(tmp_path: Path) -> None:
    for tool, package in (("redis-cli", "redis-tools"), ("redis-benchmark", "redis-tools"), ("kcat", "kcat")):
        require_binary(tool, package)
    # No 3 s wait for more group members: each kcat -G run would otherwise take ~4 s.
    config = tmp_path / "dualmq.toml"
    config.write_text("[kafka]\ngroup_initial_rebalance_delay_ms = 0\n")
    workdir = tmp_path / "shell"
    workdir.mkdir()
    (workdir / ".venv").symlink_to(Path(sys.executable).parent.parent)
    with broker_process(tmp_path, "--config", str(config)) as broker:
        env = example_env()
        env["RESP_PORT"] = str(broker.resp[1])
        env["KAFKA_PORT"] = str(broker.kafka[1])
        for script, expected in runnable_blocks(DOC.read_text()):
            done = subprocess.run(["bash", "-e", "-c", script], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=BLOCK_TIMEOUT_SECONDS)
            report = f"block:\n{script}\nexit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
            assert done.returncode == 0, report
            for fragment in expected:
                assert fragment in done.stdout, f"missing {fragment!r}\n{report}"
