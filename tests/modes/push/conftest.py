"""Every push-mode test here runs once per connection driver: the epoll event loop and the
portable task-per-connection driver (``modes.push.drivers``), so both keep Redis's behaviour.

The driver is chosen through the ``DUALMQ_PUSH_DRIVER`` environment variable, which in-process
servers (``serve_resp``) read and broker subprocesses inherit. The fixture is module-scoped, so
a module's shared broker must depend on it (``def broker(..., push_driver)``) to be started
once per driver.
"""

from __future__ import annotations

import select

import pytest

from modes.push.drivers import DRIVER_ENVIRONMENT_VARIABLE

HAS_EPOLL = hasattr(select, "epoll")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "epoll_only: a promise of the event loop alone (arrival order)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave ``epoll_only`` tests out of the task-per-connection runs (deselected, not skipped:
    they do not apply there, and a skip would read as something missing)."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        driver = callspec.params.get("push_driver") if callspec is not None else None
        (drop if driver == "tasks" and item.get_closest_marker("epoll_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="module", autouse=True, params=["epoll", "tasks"])
def push_driver(request: pytest.FixtureRequest):
    """The driver name in force for this module's tests (and every broker they start)."""
    if request.param == "epoll" and not HAS_EPOLL:
        pytest.skip("epoll is Linux-only")
    patch = pytest.MonkeyPatch()
    patch.setenv(DRIVER_ENVIRONMENT_VARIABLE, request.param)
    yield request.param
    patch.undo()
