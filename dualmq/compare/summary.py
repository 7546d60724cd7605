"""What a scenario came to, in a few numbers and one sentence, generated from the measurements.

``summarize(result)`` reduces one mode's ``ModeResult`` to what a reader needs first: how
many messages were sent, how many reached the consumers, and *why* each of the others did
not (``Shortfall``: lost after the broker accepted it for a subscriber, published while no
subscriber was connected, or never accepted because the send failed). ``verdict(summaries)``
says in one sentence what the numbers show. Nothing here knows which scenario ran: the
sentence is built from the counts and reasons alone, so a new scenario (or a sweep point)
gets a correct one without new text.

Counting is per consumer: with two consumers, each message sent can be delivered twice,
so "of N" means messages sent x consumers. Latency is compared only when both modes
delivered everything - the latency of the few messages a mode did deliver says nothing
about the ones it did not.

Used by ``report`` (terminal, JSON) and ``html``; pure functions, no I/O.
"""

from __future__ import annotations

from collections import Counter

import attrs

from dualmq.compare.accounting import NO_SUBSCRIBER, SEND_FAILED_REASON, ModeResult

__all__ = ["IN_FLIGHT", "LOST", "NO_SUBSCRIBER_KIND", "SEND_FAILED", "ModeSummary", "Shortfall", "percent", "summarize",
           "verdict"]

LOST = "lost"
NO_SUBSCRIBER_KIND = "no subscriber"
SEND_FAILED = "send failed"
IN_FLIGHT = "in flight"
MAX_REASONS = 3   # reasons named in the verdict before the rest is summed up


@attrs.frozen
class Shortfall:
    """A number of messages that were not delivered, all for the same reason."""

    kind: str      # LOST | NO_SUBSCRIBER_KIND | SEND_FAILED | IN_FLIGHT
    reason: str    # what caused it, in words ("cut off at the pubsub output-buffer limit")
    count: int

    def describe(self) -> str:
        """``"1,000 published while no subscriber was connected (not subscribed yet)"``."""
        if self.kind == LOST:
            return f"{self.count:,} lost ({self.reason})"
        if self.kind == NO_SUBSCRIBER_KIND:
            return f"{self.count:,} published while no subscriber was connected ({self.reason})"
        if self.kind == IN_FLIGHT:
            return f"{self.count:,} not delivered yet when {self.reason}"
        return f"{self.count:,} not acknowledged by the broker ({self.reason})"


@attrs.frozen
class ModeSummary:
    """One mode's outcome: sent, delivered, and the reasons for every message not delivered."""

    mode: str
    sent: int
    consumers: int
    expected: int                       # sent x consumers: what full delivery would be
    delivered: int                      # distinct messages, summed over consumers
    duplicated: int
    lost: int                           # accepted for a subscriber (or into the log), then gone
    shortfalls: tuple[Shortfall, ...]   # largest first; their counts add up to not_delivered
    latency_p50_ms: float               # of the delivered messages

    @property
    def not_delivered(self) -> int:
        return max(0, self.expected - self.delivered)

    @property
    def complete(self) -> bool:
        return self.expected > 0 and self.not_delivered == 0


def _reason_text(reason: str) -> str:
    """``"no subscriber at publish time (not subscribed yet)"`` -> ``"not subscribed yet"``."""
    prefix = f"{NO_SUBSCRIBER} ("
    return reason[len(prefix):-1] if reason.startswith(prefix) and reason.endswith(")") else reason


def summarize(result: ModeResult) -> ModeSummary:
    """Reduce one mode's result to its summary (see the module docstring)."""
    consumers = max(1, len(result.consumers))
    expected = result.sent * consumers
    delivered = min(result.delivered, expected)
    shortfalls = [Shortfall(LOST, reason, count) for reason, count in result.lost_reasons.items()]
    shortfalls += [Shortfall(NO_SUBSCRIBER_KIND, _reason_text(reason), count)
                   for reason, count in result.not_promised_reasons.items()]
    unacknowledged: Counter[str] = Counter()
    for consumer in result.consumers:
        unacknowledged.update(consumer.unacknowledged_reasons)
    failed_why = ("the send failed and was not retried" if result.mode == "push"
                  else "the send failed after the producer's retries")
    for reason, count in unacknowledged.items():
        shortfalls.append(Shortfall(SEND_FAILED, failed_why if reason == SEND_FAILED_REASON else reason, count))
    in_flight = sum(c.still_in_flight for c in result.consumers)
    if in_flight:
        shortfalls.append(Shortfall(IN_FLIGHT, result.stopped, in_flight))
    shortfalls.sort(key=lambda s: -s.count)
    return ModeSummary(mode=result.mode, sent=result.sent, consumers=consumers, expected=expected,
                       delivered=delivered, duplicated=result.duplicated, lost=result.lost,
                       shortfalls=tuple(s for s in shortfalls if s.count), latency_p50_ms=result.latency.p50_ms)


def percent(part: int, whole: int) -> str:
    """A share that never rounds to a misleading 0 % or 100 %."""
    if whole <= 0:
        return "n/a"
    share = 100 * part / whole
    if part == whole:
        return "100%"
    if part == 0:
        return "0%"
    if share < 1:
        return "<1%"
    if share > 99:
        return ">99%"
    return f"{share:.0f}%"


def _ms(value: float) -> str:
    return f"{value:.2g} ms" if value < 10 else f"{value:,.0f} ms"


def _of(summary: ModeSummary) -> str:
    """``"2,000 messages"`` or ``"4,000 (2,000 messages x 2 consumers)"``."""
    if summary.consumers == 1:
        return f"{summary.expected:,} messages"
    return f"{summary.expected:,} ({summary.sent:,} messages x {summary.consumers} consumers)"


def _clause(summary: ModeSummary) -> str:
    """One mode's part of the verdict: how much it delivered and the main reasons for the rest."""
    mode = summary.mode
    if summary.expected == 0:
        return f"{mode} sent nothing"
    if summary.complete:
        text = f"{mode} delivered all {_of(summary)}"
    elif summary.delivered == 0:
        text = f"{mode} delivered none of {_of(summary)}"
    else:
        text = (f"{mode} delivered {summary.delivered:,} of {_of(summary)} "
                f"({percent(summary.delivered, summary.expected)})")
    if summary.duplicated:
        text += f", plus {summary.duplicated:,} duplicate deliveries"
    if summary.shortfalls:
        # Every reason when there are few; the largest ones and a remainder otherwise.
        shown = summary.shortfalls if len(summary.shortfalls) <= MAX_REASONS else summary.shortfalls[:MAX_REASONS - 1]
        parts = [s.describe() for s in shown]
        rest = summary.not_delivered - sum(s.count for s in shown)
        if rest > 0:
            parts.append(f"{rest:,} for other reasons")
        text += ": " + _join(parts)
    return text


def _join(parts: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def verdict(summaries: list[ModeSummary]) -> str:
    """One sentence on what the numbers show, pull first (empty when nothing ran).

    When every mode delivered everything the sentence compares median latency (the only
    difference left to state); otherwise it states what each mode delivered and why the rest
    was not, and leaves latency out.
    """
    if not summaries:
        return ""
    if len(summaries) > 1 and all(s.complete and not s.duplicated for s in summaries) \
            and len({s.expected for s in summaries}) == 1:
        medians = " and ".join(f"{_ms(s.latency_p50_ms)} in {s.mode} mode" for s in summaries)
        return f"Both modes delivered all {_of(summaries[0])}; the median latency was {medians}."
    text = "; ".join(_clause(s) for s in summaries)
    return text[0].upper() + text[1:] + "."
