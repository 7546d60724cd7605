"""Scenario outcomes for a graceful broker restart and a burst (see test_scenarios.py for the rest)."""

from __future__ import annotations

import logging

import pytest
import structlog

from dualmq.compare.accounting import account
from dualmq.compare.runner import run_workload
from dualmq.compare.workload import scenario

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def quiet_broker_logs():
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield
    structlog.reset_defaults()


async def results(workload):
    run = await run_workload(workload)
    return {mode: account(log) for mode, log in run.logs.items()}


async def test_broker_restart_pull_keeps_everything_push_drops_what_was_in_flight():
    r = await results(scenario("broker-restart", messages=1000))
    pull, push = r["pull"], r["push"]
    # Pull mode: a graceful restart flushes the log; the consumer comes back and reads on.
    assert pull.acknowledged == 1000
    assert pull.delivered == 1000 and pull.lost == 0 and pull.reordered == 0
    # Push mode: nothing survives the restart. Publishes in flight when it went down fail
    # (not acknowledged); acknowledged ones that reached nobody because the subscriber was
    # not back yet are put down to the restart (how many depends on who reconnects first).
    assert push.delivered <= push.acknowledged < push.sent == 1000
    assert push.lost == 0 and push.duplicated == 0
    assert push.not_promised == push.acknowledged - push.delivered
    assert all("restart" in reason for reason in push.not_promised_reasons), push.not_promised_reasons


async def test_burst_is_absorbed_by_both_modes_with_default_limits():
    r = await results(scenario("burst", messages=1000, rate=2000))
    for mode in ("pull", "push"):
        outcome = r[mode]
        # 1000 steady messages plus the 10,000-message burst, all delivered exactly once.
        assert outcome.sent == 11000, mode
        assert outcome.delivered == 11000 and outcome.lost == 0, mode
        assert outcome.duplicated == 0 and outcome.reordered == 0, mode
