"""The README's "Securing the broker" walkthroughs, run for real in a scratch directory.

Each ``sh`` block of the Kafka, TLS and compare subsections is run by bash exactly as written, except for
the ports: the README uses the defaults (9092, 6379), which another broker on this machine may
hold, so the test points every command at free ports instead (and waits for the backgrounded
``dualmq serve`` to be ready, where a reader would simply wait a moment). What each block must
print is checked, including the failure the prose announces.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from bench._common import free_port
from tests.examples.helpers import REPO
from tests.support import require_binary

pytestmark = pytest.mark.interop

SECTION = REPO.joinpath("README.md").read_text().split("## Securing the broker")[1].split("\n## ")[0]
KAFKA = SECTION.split("### Kafka: SASL users and ACLs")[1].split("\n### ")[0]
TLS = SECTION.split("### TLS on both listeners")[1].split("\n### ")[0]
COMPARE = SECTION.split("### Compare against a secured broker")[1].split("\n### ")[0]
BLOCKS = [re.findall(r"```sh\n(.*?)```", part, re.S)[0] for part in (KAFKA, TLS, COMPARE)]


def adapted(block: str, kafka: int, resp: int) -> str:
    """The block with the default ports replaced, and a wait for the broker after it is started."""
    block = block.replace("127.0.0.1:9092", f"127.0.0.1:{kafka}").replace("127.0.0.1:6379", f"127.0.0.1:{resp}")
    block = re.sub(r"(dualmq serve [^&\n]*)&",
                   rf"\1 --kafka 127.0.0.1:{kafka} --resp 127.0.0.1:{resp} --ready-file ready.json &\n"
                   r"for i in $(seq 100); do [ -s ready.json ] && break; sleep 0.1; done", block)
    block = re.sub(r"(dualmq (?:acl|produce|consume|topics) \w*)", rf"\1 --kafka 127.0.0.1:{kafka}", block)
    block = block.replace("redis-cli ", f"redis-cli -p {resp} ")
    block = re.sub(r"(dualmq publish [^\n]*)", rf"\1 --resp 127.0.0.1:{resp}", block)
    return block.replace(".venv/bin/", f"{REPO}/.venv/bin/")


def run_block(block: str, workdir) -> subprocess.CompletedProcess:
    script = "set -u\n" + block + "\nstatus=$?\nkill %1 2>/dev/null; wait\nexit $status\n"
    return subprocess.run(["bash", "-c", script], cwd=workdir, capture_output=True, text=True, timeout=120,
                          start_new_session=True, env={**os.environ, "DUALMQ_PASSWORD": ""})


@pytest.fixture(autouse=True)
def _tools():
    for tool, package in (("kcat", "kcat"), ("redis-cli", "redis-tools"), ("openssl", "openssl")):
        require_binary(tool, package)


def test_kafka_walkthrough(tmp_path):
    done = run_block(adapted(BLOCKS[0], free_port(), free_port()), tmp_path)
    assert "added pull-mode user 'admin'" in done.stdout, done.stderr
    assert "added User:alice allow write" in done.stdout, done.stderr
    # The last command is the announced failure: alice may write orders-* but not read it.
    assert done.returncode != 0 and "Topic authorization failed" in done.stderr, done.stderr
    assert "admin-secret" not in (tmp_path / "secure.toml").read_text()


def test_tls_walkthrough(tmp_path):
    done = run_block(adapted(BLOCKS[1], free_port(), free_port()), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "PONG" in done.stdout and "delivered to 0 subscribers" in done.stdout
    assert re.search(r"broker 0 at 127\.0\.0\.1:\d+", done.stdout), done.stdout


def test_compare_walkthrough(tmp_path):
    done = run_block(adapted(BLOCKS[2], free_port(), free_port()), tmp_path)
    assert done.returncode == 0, done.stderr
    for line in ("authentication                 SASL SCRAM-SHA-256 as user bench; over TLS",
                 "authentication                 AUTH as ACL user bench; over TLS"):
        assert line in done.stdout, done.stdout
    assert "Pull delivered all" in done.stdout, done.stdout
    assert "bench-secret" not in (tmp_path / "secured.toml").read_text() + done.stdout + done.stderr
