"""The summary and the verdict come from the numbers: every message not delivered has a reason,
shares never round to a misleading 0 % or 100 %, and the sentence changes when the counts do."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dualmq.compare.accounting import account
from dualmq.compare.runner import INTERRUPTED
from dualmq.compare.summary import IN_FLIGHT, LOST, NO_SUBSCRIBER_KIND, SEND_FAILED, percent, summarize, verdict
from tests.compare.synthetic import mode_log


def test_slow_consumer_like_numbers_give_the_reasons_and_the_share():
    pull = summarize(account(mode_log("pull", 2500, set(range(2500)))))
    push = summarize(account(mode_log("push", 2500, set(range(446)), cut_at=509)))
    assert pull.complete and pull.not_delivered == 0 and pull.shortfalls == ()
    assert push.delivered == 446 and push.not_delivered == 2054 and push.lost == 63
    assert [(s.kind, s.count) for s in push.shortfalls] == [(NO_SUBSCRIBER_KIND, 1991), (LOST, 63)]
    sentence = verdict([pull, push])
    assert sentence == ("Pull delivered all 2,500 messages; push delivered 446 of 2,500 messages (18%): "
                        "1,991 published while no subscriber was connected (cut off at the pubsub output-buffer "
                        "limit) and 63 lost (cut off at the pubsub output-buffer limit).")


def test_latency_is_compared_only_when_both_delivered_everything():
    pull = summarize(account(mode_log("pull", 100, set(range(100)))))
    push = summarize(account(mode_log("push", 100, set(range(100)))))
    sentence = verdict([pull, push])
    assert sentence.startswith("Both modes delivered all 100 messages; the median latency was ")
    assert "ms in pull mode and" in sentence and "ms in push mode." in sentence
    partial = summarize(account(mode_log("push", 100, set(range(50, 100)), window_from=50)))
    sentence = verdict([pull, partial])
    assert "latency" not in sentence
    assert "push delivered 50 of 100 messages (50%): 50 published while no subscriber was connected" in sentence


def test_failed_sends_and_several_consumers_are_counted():
    log = mode_log("push", 10, set(range(2, 10)), failed=frozenset({0, 1}), consumers=2)
    summary = summarize(account(log))
    assert summary.expected == 20 and summary.delivered == 16 and summary.not_delivered == 4
    assert [(s.kind, s.count) for s in summary.shortfalls] == [(SEND_FAILED, 4)]
    assert verdict([summary]) == ("Push delivered 16 of 20 (10 messages x 2 consumers) (80%): 4 not acknowledged "
                                  "by the broker (the send failed and was not retried).")


def test_a_stopped_run_counts_what_was_in_flight_apart_not_as_lost():
    """Ctrl-C in the middle: the messages not delivered *yet* were not lost."""
    log = mode_log("pull", 100, set(range(60)))
    log.stopped = INTERRUPTED
    log.incidents.append((50 * 1_000_000, "broker killed with SIGKILL, fsync=always"))
    result = account(log)
    assert result.lost == 0 and result.consumers[0].still_in_flight == 40
    summary = summarize(result)
    assert [(s.kind, s.count) for s in summary.shortfalls] == [(IN_FLIGHT, 40)]
    assert verdict([summary]) == ("Pull delivered 60 of 100 messages (60%): 40 not delivered yet when the run was "
                                  "interrupted (Ctrl-C).")


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.data())
def test_shortfalls_always_add_up_to_what_was_not_delivered(sent, data):
    window_from = data.draw(st.integers(0, sent))
    cut_at = data.draw(st.one_of(st.none(), st.integers(window_from, sent)))
    failed = frozenset(data.draw(st.sets(st.integers(0, sent - 1), max_size=sent)))
    reachable = [i for i in range(window_from, cut_at if cut_at is not None else sent) if i not in failed]
    delivered = set(data.draw(st.lists(st.sampled_from(reachable), unique=True))) if reachable else set()
    summary = summarize(account(mode_log("push", sent, delivered, window_from=window_from, failed=failed,
                                         cut_at=cut_at)))
    assert summary.delivered == len(delivered)
    assert sum(s.count for s in summary.shortfalls) == summary.not_delivered == sent - len(delivered)
    sentence = verdict([summary])
    if summary.delivered == 0:
        assert f"none of {sent:,}" in sentence
    elif summary.not_delivered:
        assert f"delivered {summary.delivered:,} of {sent:,} messages" in sentence
    else:
        assert f"delivered all {sent:,} messages" in sentence


@given(st.integers(0, 10_000), st.integers(1, 10_000))
def test_percent_never_rounds_to_all_or_nothing(part, whole):
    part = min(part, whole)
    text = percent(part, whole)
    assert (text == "100%") == (part == whole)
    assert (text == "0%") == (part == 0)
