"""The accounting against synthetic logs whose losses, duplicates and reorders are known exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dualmq.compare import payload
from dualmq.compare.accounting import (
    NO_SUBSCRIBER,
    ModeLog,
    Receipt,
    Send,
    Window,
    account,
    account_consumer,
    percentile,
)


@st.composite
def delivery_log(draw):
    """Sends from a few producers, and a receipt order with known losses, duplicates, swaps."""
    producers = draw(st.integers(1, 3))
    per_producer = draw(st.integers(1, 40))
    sends = []
    t = 1_000
    for seq in range(per_producer):
        for producer in range(producers):
            t += 10
            sends.append(Send(producer, seq, -1, t, t + 5))
    lost = set(draw(st.sets(st.integers(0, len(sends) - 1), max_size=len(sends))))
    kept = [s for i, s in enumerate(sends) if i not in lost]
    # Reorders: swap disjoint pairs of *consecutive messages of the same producer*. Each swap makes
    # exactly one reordered receipt (the smaller sequence arriving after the larger).
    by_producer: dict[int, list[Send]] = {}
    for s in kept:
        by_producer.setdefault(s.producer, []).append(s)
    swaps = 0
    streams = []
    for stream in by_producer.values():
        stream = list(stream)
        i = 0
        while i + 1 < len(stream):
            if draw(st.booleans()):
                stream[i], stream[i + 1] = stream[i + 1], stream[i]
                swaps += 1
                i += 2
            else:
                i += 1
        streams.append(stream)
    # Interleave producers' streams (order across producers is free), then add duplicates.
    order = []
    while any(streams):
        choices = [k for k, s in enumerate(streams) if s]
        k = draw(st.sampled_from(choices))
        order.append(streams[k].pop(0))
    duplicates = 0
    received = []
    for s in order:
        received.append(s)
        copies = draw(st.integers(0, 2)) if draw(st.booleans()) else 0
        received.extend([s] * copies)
        duplicates += copies
    receipts = [Receipt(s.producer, s.seq, s.sent_ns, s.sent_ns + 100 + s.seq) for s in received]
    return sends, receipts, len(lost), duplicates, swaps


@settings(max_examples=200, deadline=None)
@given(delivery_log())
def test_counts_are_exact(log):
    sends, receipts, lost, duplicates, swaps = log
    result = account_consumer("c0", sends, receipts, [Window(0)])
    assert result.delivered == len(sends) - lost
    assert result.lost == lost
    assert result.duplicated == duplicates
    assert result.reordered == swaps
    assert result.receipts == len(receipts)
    assert result.not_promised == 0


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 50), st.integers(0, 50), st.integers(0, 50))
def test_push_windows_split_not_promised_from_lost(before, during_lost, during_ok):
    """Messages before the window are 'no subscriber'; inside a window that ended they are lost."""
    sends, receipts = [], []
    t = 0
    for seq in range(before):
        t += 10
        sends.append(Send(0, seq, -1, t, t + 1, receivers=0))
    start = t + 5
    for seq in range(before, before + during_ok + during_lost):
        t += 10
        sends.append(Send(0, seq, -1, t, t + 1, receivers=1))
        if seq < before + during_ok:
            receipts.append(Receipt(0, seq, t, t + 3))
    windows = [Window(start, t + 5, "slow-subscriber disconnect")]
    result = account_consumer("c0", sends, receipts, windows)
    assert result.delivered == during_ok
    assert result.lost == during_lost
    assert result.lost_reasons == ({"slow-subscriber disconnect": during_lost} if during_lost else {})
    assert result.not_promised == before
    assert result.not_promised_reasons == {f"{NO_SUBSCRIBER} (not subscribed yet)": before}


def test_unacknowledged_is_not_lost_and_incident_explains_loss():
    sends = [Send(0, 0, -1, 10, None, error="broker down"), Send(0, 1, -1, 20, 25), Send(0, 2, -1, 30, 35)]
    receipts = [Receipt(0, 2, 30, 40)]
    result = account_consumer("c0", sends, receipts, [Window(0)], incidents=[(22, "broker killed (fsync=never)")])
    assert result.unacknowledged_not_delivered == 1
    assert result.lost == 1
    assert result.lost_reasons == {"broker killed (fsync=never)": 1}


def test_zero_receivers_means_not_promised_even_inside_a_window():
    sends = [Send(0, 0, -1, 10, 11, receivers=0)]
    result = account_consumer("c0", sends, [], [Window(0, 100, "broker restarted")])
    assert result.lost == 0 and result.not_promised == 1


def test_reorder_is_per_key():
    sends = [Send(0, 0, 0, 1, 2), Send(0, 1, 1, 3, 4), Send(0, 2, 0, 5, 6)]
    # Keys 0 and 1 interleave differently from the send order: not a reorder per key.
    receipts = [Receipt(0, 1, 3, 10), Receipt(0, 0, 1, 11), Receipt(0, 2, 5, 12)]
    assert account_consumer("c0", sends, receipts, [Window(0)]).reordered == 0
    receipts = [Receipt(0, 2, 5, 10), Receipt(0, 0, 1, 11), Receipt(0, 1, 3, 12)]
    assert account_consumer("c0", sends, receipts, [Window(0)]).reordered == 1


def test_latency_percentiles_and_rates():
    log = ModeLog(mode="pull")
    log.sends = [Send(0, i, -1, i * 1_000_000, i * 1_000_000 + 1) for i in range(1000)]
    # Latency of message i is i microseconds... in ms: i / 1000.
    log.receipts = {"c0": [Receipt(0, i, i * 1_000_000, i * 1_000_000 + i * 1000) for i in range(1000)]}
    result = account(log)
    assert result.latency.count == 1000
    assert result.latency.p50_ms == 0.499
    assert result.latency.p99_ms == 0.989
    assert result.latency.max_ms == 0.999
    assert result.cdf[-1][1] == 1.0
    assert 900 < result.send_rate < 1100
    assert sum(d for _, _, d in result.timeline) > 0


@given(st.lists(st.floats(0, 1e6), min_size=1), st.floats(0, 1))
def test_percentile_is_an_element(values, fraction):
    values.sort()
    assert percentile(values, fraction) in values


@given(st.binary(min_size=8, max_size=8), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1),
       st.integers(0, 2**64 - 1), st.integers(0, 200))
def test_payload_round_trip(run_id, producer, seq, sent_ns, size):
    body = payload.encode(run_id, producer, seq, sent_ns, size)
    assert len(body) == max(size, payload.HEADER_SIZE)
    assert payload.decode(body, run_id) == (producer, seq, sent_ns)
    assert payload.decode(body, bytes(8) if run_id != bytes(8) else b"x" * 8) is None
    assert payload.decode(body[:10], run_id) is None


def test_the_delivery_gap_is_the_longest_time_between_two_receipts_in_a_row_duplicates_included():
    ms = 1_000_000
    receipts = [Receipt(0, 0, 0, 10 * ms), Receipt(0, 1, 0, 12 * ms), Receipt(0, 0, 0, 400 * ms),  # a duplicate
                Receipt(0, 2, 0, 405 * ms)]
    result = account_consumer("c0", [Send(0, s, -1, 0, 1) for s in range(3)], receipts, [Window(0)])
    assert result.longest_gap_ms == 388.0   # 12 ms -> 400 ms: the duplicate ends the gap
    assert account_consumer("c0", [], receipts[:1], [Window(0)]).longest_gap_ms == 0.0


def test_cut_off_is_the_time_between_windows_or_until_the_end_of_the_run():
    ms = 1_000_000
    windows = [Window(100 * ms, 150 * ms, "broker node 1 killed with SIGKILL"), Window(190 * ms, 300 * ms, "x"),
               Window(320 * ms)]
    result = account_consumer("c0", [], [], windows, end_ns=1_000 * ms)
    assert result.cut_off_ms == 40.0 + 20.0
    # The last window ended and none followed: cut off until the end of the run.
    assert account_consumer("c0", [], [], windows[:2], end_ns=1_000 * ms).cut_off_ms == 40.0 + 700.0
    # Pull mode's one window never ends.
    assert account_consumer("c0", [], [], [Window(0)], end_ns=1_000 * ms).cut_off_ms == 0.0


def test_the_mode_reports_its_worst_consumer_s_gap_and_cut_off():
    ms = 1_000_000
    log = ModeLog(mode="push", finished_ns=1_000 * ms, sends=[Send(0, s, -1, s * ms, s * ms) for s in range(3)])
    log.receipts = {"c0": [Receipt(0, 0, 0, 1 * ms), Receipt(0, 2, 2 * ms, 90 * ms)],
                    "c1": [Receipt(0, s, s * ms, s * ms + 5 * ms) for s in range(3)]}
    log.windows = {"c0": [Window(0, 50 * ms, "gone"), Window(80 * ms)], "c1": [Window(0)]}
    result = account(log)
    assert result.longest_gap_ms == 89.0 and result.cut_off_ms == 30.0
    assert [(c.name, c.longest_gap_ms, c.cut_off_ms) for c in result.consumers] == [("c0", 89.0, 30.0),
                                                                                   ("c1", 1.0, 0.0)]
