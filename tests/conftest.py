"""Test-suite plumbing: run ``async def`` tests under trio, and locate real client tools."""

from __future__ import annotations

import functools
import inspect

import pytest
import trio
from hypothesis import HealthCheck, settings

# The suite runs on shared 2-core machines next to broker subprocesses: a wall-clock deadline
# per hypothesis example measures the neighbours, not our code, so none is set. Tests that care
# about speed are benchmarks (bench/), never timed unit tests.
settings.register_profile("dualmq", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("dualmq")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run coroutine test functions with ``trio.run`` (no plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    trio.run(functools.partial(pyfuncitem.obj, **kwargs))
    return True
