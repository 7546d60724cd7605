"""Helpers shared by tests: finding real third-party tools, free of any broker code.

Interop tests need programs nobody here wrote (kcat, redis-cli, redis-server, ...). On a
developer machine without them those tests skip with a message naming the Debian package;
with ``DUALMQ_REQUIRE_INTEROP=1`` (set by ``.ci/run``) a missing tool is a failure instead,
because CI must really run them.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_INTEROP = os.environ.get("DUALMQ_REQUIRE_INTEROP") == "1"


def require_binary(name: str, package: str) -> str:
    """Return the path of program ``name``, or skip (fail under CI) naming its package."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: install the Debian package {package!r} (make test does, as root)"
        if REQUIRE_INTEROP:
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_module(name: str, package: str):
    """Import and return module ``name``, or skip (fail under CI) naming its pip package."""
    try:
        return __import__(name)
    except ImportError:
        message = f"python module {name} not importable: pip install {package!r}"
        if REQUIRE_INTEROP:
            pytest.fail(message)
        pytest.skip(message)
