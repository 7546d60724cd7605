"""Synthetic mode logs with known outcomes, for the summary, report and HTML tests."""

from __future__ import annotations

from dualmq.compare.accounting import ModeLog, Receipt, Send, Window

CUT_OFF = "cut off at the pubsub output-buffer limit"


def mode_log(mode: str, sent: int, delivered: set[int], *, window_from: int = 0, failed: frozenset[int] = frozenset(),
             cut_at: int | None = None, consumers: int = 1) -> ModeLog:
    """``sent`` messages 1 ms apart; ``delivered`` reach every consumer; push windows as given."""
    log = ModeLog(mode=mode)
    for i in range(sent):
        t = (i + 1) * 1_000_000
        receivers = None if mode == "pull" else (1 if window_from <= i and (cut_at is None or i < cut_at) else 0)
        log.sends.append(Send(0, i, -1, t, None if i in failed else t + 10, receivers))
    for c in range(consumers):
        log.receipts[f"c{c}"] = [Receipt(0, i, (i + 1) * 1_000_000, (i + 1) * 1_000_000 + 2_000_000 + i * 1000)
                                 for i in sorted(delivered)]
        if mode == "push":
            end = None if cut_at is None else (cut_at + 1) * 1_000_000 - 1
            log.windows[f"c{c}"] = [Window((window_from + 1) * 1_000_000 - 1, end,
                                           CUT_OFF if end else "")]
    return log
