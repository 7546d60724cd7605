"""The README's "Run a three-broker cluster" block, run for real by bash in a scratch directory.

Exactly as written except for the ports: the README uses etcd's and the brokers' default ports,
which something else on this machine may hold, so every port is replaced by a free one (etcd's
peer port, left to its default in the README, is named explicitly), and the fixed ``sleep``
becomes a wait for the three brokers' ready files.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from bench._common import free_port
from tests.examples.helpers import REPO
from tests.support import require_binary

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

SECTION = REPO.joinpath("README.md").read_text().split("## Run a three-broker cluster")[1].split("\n## ")[0]
BLOCK = re.findall(r"```sh\n(.*?)```", SECTION, re.S)[0]


def adapted(block: str) -> str:
    etcd, peer = free_port(), free_port()
    block = block.replace("etcd --data-dir dualmq-etcd &",
                          f"etcd --data-dir dualmq-etcd --listen-client-urls http://127.0.0.1:{etcd} "
                          f"--advertise-client-urls http://127.0.0.1:{etcd} --listen-peer-urls http://127.0.0.1:{peer} "
                          f"--initial-advertise-peer-urls http://127.0.0.1:{peer} "
                          f"--initial-cluster default=http://127.0.0.1:{peer} --log-level warn &")
    block = block.replace("127.0.0.1:2379", f"127.0.0.1:{etcd}")
    for port in ("9092", "9093", "9094", "6379", "6380", "6381"):
        block = block.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")
    # A 2 s lease TTL instead of the default 10 s: the failover (and the README's wait for it) is shorter.
    block = "printf '[cluster]\\nlease_ttl_seconds = 2\\n' > cluster.toml\n" + block
    block = re.sub(r"(dualmq serve --node-id (\d)[^&\n]*)&", r"\1 --ready-file ready-\2.json --config cluster.toml &",
                   block)
    block = block.replace("sleep 12", "sleep 4")
    block = block.replace("sleep 3", "for i in $(seq 200); do [ -s ready-1.json ] && [ -s ready-2.json ] && "
                                     "[ -s ready-3.json ] && break; sleep 0.1; done")
    return block.replace(".venv/bin/", f"{REPO}/.venv/bin/")


def test_the_three_broker_cluster_walkthrough_runs_as_written(tmp_path):
    require_binary("etcd", "etcd-server")
    require_binary("kcat", "kcat")
    script = "set -u\n" + adapted(BLOCK) + "\nstatus=$?\nkill $(jobs -p) 2>/dev/null; wait\nexit $status\n"
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=100,
                          start_new_session=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.splitlines()[:4] == ["created topic orders with 1 partition(s)", "one", "two", "three"], out
    assert " 3 brokers:" in out and " 2 brokers:" in out and out.count("(controller)") == 2, out
    found = re.search(r'topic "orders" with 1 partitions:\n\s+partition 0, leader [123], replicas: ([123,]+), '
                      r'isrs: ([123,]+)', out)
    assert found and sorted(found[1].split(",")) == sorted(found[2].split(",")) == ["1", "2", "3"], out
    lines = out.splitlines()
    assert "same bytes" in lines, out
    # After broker 1's crash: brokers 2 and 3 in sync, one of them leading (another leader if
    # broker 1 led), and the new record written and read.
    listings = re.findall(r"partition 0, leader (\d), replicas: [123,]+, isrs: ([123,]+)", out)
    assert len(listings) == 2, out
    (first, _), (second, isr) = listings
    assert second in ("2", "3") and sorted(isr.split(",")) == ["2", "3"], out
    assert first == "1" or second == first, out
    assert lines[-4:] == ["one", "two", "three", "four"], out
