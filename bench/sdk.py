"""The SDK benchmark of the SDK issue, both halves in one command.

    .venv/bin/python bench/sdk.py [--runs 3]

Runs ``bench/sdk_pull.py`` (SDK Producer and Consumer against kafka-python and aiokafka, which
it installs from the ``bench`` extra if missing, on one dualmq broker) and then ``bench/sdk_push.py`` (the SDK subscriber against
redis-py + hiredis on one dualmq broker). Each prints its own table of medians and ratios to
the reference run in the same script; see their docstrings for what exactly is measured.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (medians are printed)")
    args = parser.parse_args()
    status = 0
    for script in ("sdk_pull.py", "sdk_push.py"):
        print(f"== {script}", flush=True)
        status |= subprocess.call([sys.executable, str(HERE / script), "--runs", str(args.runs)])
    return status


if __name__ == "__main__":
    raise SystemExit(main())
