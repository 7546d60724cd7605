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


@pytest.fixture(scope="module", autouse=True, params=["epoll", "tasks"])
def push_driver(request: pytest.FixtureRequest):
    """The driver name in force for this module's tests (and every broker they start)."""
    if request.param == "epoll" and not HAS_EPOLL:
        pytest.skip("epoll is Linux-only")
    patch = pytest.MonkeyPatch()
    patch.setenv(DRIVER_ENVIRONMENT_VARIABLE, request.param)
    yield request.param
    patch.undo()
