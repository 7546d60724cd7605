"""Running an example as a learner would (``python examples/NN_name.py``) and reading its results.

Every example prints, besides its prose, machine-checkable lines such as
``RESULT push_received=0 pull_received=5``; ``run_example`` collects them into one dict so a
test can assert on the numbers a lesson teaches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EXAMPLE_TIMEOUT_SECONDS = 60


def example_env() -> dict[str, str]:
    """The environment of a learner's shell, plus the source tree on the path (for a checkout
    that was never ``pip install``-ed) and the interpreter's bin directory (for the ``dualmq`` CLI)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    return env


def is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def run_example(name: str, timeout: float = EXAMPLE_TIMEOUT_SECONDS) -> tuple[str, dict[str, str]]:
    """Run ``examples/<name>`` to completion and return (stdout, RESULT key -> value).

    Fails the test with the example's output if it exits non-zero or runs over the timeout.
    """
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=REPO, env=example_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, (
        f"{name} exited with {completed.returncode}\n--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
    )
    # A lesson is read by a person: log lines are rendered for one, even into a pipe.
    raw = [line for line in (completed.stdout + completed.stderr).splitlines() if is_json_object(line)]
    assert raw == [], f"{name} printed raw JSON log lines:\n" + "\n".join(raw[:5])
    results: dict[str, str] = {}
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            for pair in line.split()[1:]:
                key, _, value = pair.partition("=")
                results[key] = value
    assert "What to remember" in completed.stdout, f"{name} lost its conclusion:\n{completed.stdout}"
    return completed.stdout, results
