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


async def test_broker_restart_push_subscriber_misses_what_is_published_while_it_is_away():
    r = await results(scenario("broker-restart", messages=1000))
    pull, push = r["pull"], r["push"]
    # Pull mode: a graceful restart flushes the log; the consumer comes back and reads on.
    assert pull.acknowledged == 1000
    assert pull.delivered == 1000 and pull.lost == 0 and pull.reordered == 0
    # Push mode: publishes made while the broker was down fail (not acknowledged); once it is
    # back the publisher carries on, acknowledged, while the subscriber is still away (it
    # reconnects 0.5 s later, as the scenario says): those reach nobody.
    assert push.acknowledged < push.sent == 1000
    assert push.not_promised > 100, push.not_promised_reasons
    assert set(push.not_promised_reasons) == {"no subscriber at publish time (broker restarted with SIGTERM)"}
    assert all("broker restarted" in reason for reason in push.lost_reasons), push.lost_reasons
    assert push.delivered + push.lost + push.not_promised == push.acknowledged
    assert push.duplicated == 0
    # The scenario held both consumers back for 0.5 s after the broker was back.
    for outcome in (pull, push):
        assert outcome.metrics["broker_restarts"] == 1
        times = {what: at for at, what in outcome.incidents}
        back = next(at for what, at in times.items() if what.startswith("broker back"))
        assert times["consumers reconnect (0.5 s after the broker is back)"] >= back + 0.5


async def test_burst_is_absorbed_by_both_modes_with_default_limits():
    r = await results(scenario("burst", messages=1000, rate=2000))
    for mode in ("pull", "push"):
        outcome = r[mode]
        # 1000 steady messages plus the 10,000-message burst, all delivered exactly once.
        assert outcome.sent == 11000, mode
        assert outcome.delivered == 11000 and outcome.lost == 0, mode
        assert outcome.duplicated == 0 and outcome.reordered == 0, mode
