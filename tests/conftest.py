"""Test-suite plumbing: run ``async def`` tests under trio, and locate real client tools."""

from __future__ import annotations

import functools
import gc
import inspect
import warnings

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


@pytest.fixture(autouse=True, scope="module")
def _finalize_leaked_sockets_where_they_were_leaked(request: pytest.FixtureRequest):
    """Collect garbage when a module that tolerates unclosed sockets ends.

    kafka-python leaves its wake-up socketpairs (and, refused, its sockets) to the garbage
    collector. The modules using it ignore that ResourceWarning, but the collector may run
    only during a later module's test, where ``filterwarnings = error`` turns the warning into
    that innocent test's failure. Collecting here finalizes them under the module's own
    tolerance; modules that do not declare it are left alone, so our own leaks still fail.
    """
    yield
    marks = [mark for mark in request.node.iter_markers("filterwarnings")]
    if any("unclosed <socket.socket" in str(arg) for mark in marks for arg in mark.args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


@pytest.fixture
def etcd(tmp_path):
    """A real etcd (``tests.support.etcd_process``) for this test: started on free loopback
    ports, healthy, killed at teardown; skipped where etcd is missing (fails under CI)."""
    from tests.support import etcd_process

    with etcd_process(tmp_path) as server:
        yield server
