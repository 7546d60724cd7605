"""The one-sentence verdict of each measured scenario, built from its medians.

Nothing here is a conclusion written in advance: each function reads the medians of a
``SweepResult`` and says what they show, including - plainly - when they contradict the article
the scenario tests ("Redis throughput decreases with more connected nodes", "Kafka supports
parallelism" ...). Where a figure is missing (a mode not run, nothing received) the sentence
says so instead of guessing.
"""

from __future__ import annotations

import math

from dualmq.compare.sweeps import SweepResult

SAME_WITHIN = 1.15   # two medians less than 15 % apart are "about the same" on a shared machine


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _ms(value: float) -> str:
    return f"{value:,.2f} ms" if value < 100 else f"{value:,.0f} ms"


def _factor(before: float, after: float) -> tuple[str, float]:
    """("fell 3.2x" | "grew 1.4x" | "stayed about the same", ratio after/before)."""
    if not (before > 0 and after > 0):
        return "could not be compared", math.nan
    ratio = after / before
    if 1 / SAME_WITHIN <= ratio <= SAME_WITHIN:
        return "stayed about the same", ratio
    return (f"grew {ratio:.1f}x" if ratio > 1 else f"fell {1 / ratio:.1f}x"), ratio


def _ends(result: SweepResult, mode: str, metric: str) -> tuple[float, float, str, str]:
    points = [p for p in result.points if p.runs.get(mode)]
    if not points:
        return math.nan, math.nan, "", ""
    first, last = points[0], points[-1]
    return first.median(mode, metric), last.median(mode, metric), first.point.label, last.point.label


def baseline(result: SweepResult) -> str:
    (point,) = result.points
    parts = []
    for mode in result.modes():
        parts.append(f"{mode} delivered {_rate(point.median(mode, 'delivered_per_s'))} with a median latency of "
                     f"{_ms(point.median(mode, 'p50_ms'))} (p99 {_ms(point.median(mode, 'p99_ms'))})")
    if not parts:
        return "Nothing was measured."
    sentence = "Over the steady window " + "; ".join(parts) + "."
    if set(result.modes()) == {"pull", "push"}:
        pull, push = point.median("pull", "delivered_per_s"), point.median("push", "delivered_per_s")
        if not (pull > 0 and push > 0):
            sentence += (" Their throughputs cannot be compared: a mode received nothing inside the steady window "
                         "(a run too short to have one: use the default length).")
        elif pull > push * SAME_WITHIN:
            sentence += f" Pull had {pull / push:.1f}x push's throughput, as the article expects."
        elif push > pull * SAME_WITHIN:
            sentence += (f" Push had {push / pull:.1f}x pull's throughput: here that contradicts the article's "
                         f"\"Kafka generally has higher throughput\" for one consumer.")
        else:
            sentence += " Their throughputs were about the same."
    return sentence


def fan_out(result: SweepResult) -> str:
    parts = []
    for mode in result.modes():
        send0, send1, low, high = _ends(result, mode, "send_per_s")
        each0, each1, _, _ = _ends(result, mode, "per_consumer_per_s")
        reader = "subscriber" if mode == "push" else "group"
        send_change, send_ratio = _factor(send0, send1)
        each_change, _ = _factor(each0, each1)
        parts.append((mode, send_ratio,
                      f"from {low} to {high} {reader}s {mode}'s producer rate {send_change} "
                      f"({_rate(send0)} -> {_rate(send1)}) and the rate per {reader} {each_change} "
                      f"({_rate(each0)} -> {_rate(each1)})"))
    if not parts:
        return "Nothing was measured."
    sentence = "; ".join(text for _, _, text in parts) + "."
    ratios = {mode: ratio for mode, ratio, _ in parts}
    push, pull = ratios.get("push", math.nan), ratios.get("pull", math.nan)
    if push < 1 / SAME_WITHIN:
        sentence += " Push's publisher slowed with every subscriber added, as the article says (Redis must write each message to each subscriber)."
    elif push == push:
        sentence += " Push's publisher did not slow down as subscribers were added: that contradicts the article here."
    if pull < 1 / SAME_WITHIN:
        sentence += (f" Pull's producer slowed too, which the article does not predict (\"Kafka does not wait for "
                     f"subscribers\"): the broker never waits for consumers, but on this {result.cpus}-core machine "
                     f"every consumer group's reader competes with the producer and the broker for the CPU, so "
                     f"this is CPU-bound, not a wait.")
    elif pull == pull:
        sentence += " Pull's producer kept its rate: consumers read at their own pace, as the article says."
    return sentence


def parallelism(result: SweepResult) -> str:
    parts = []
    ratios = {}
    for mode in result.modes():
        v0, v1, low, high = _ends(result, mode, "distinct_per_s")
        change, ratio = _factor(v0, v1)
        ratios[mode] = ratio
        who = "members" if mode == "pull" else "subscribers"
        parts.append(f"from {low} to {high} {who} {mode}'s distinct messages processed per second {change} "
                     f"({_rate(v0)} -> {_rate(v1)})")
    if not parts:
        return "Nothing was measured."
    sentence = "; ".join(parts) + "."
    pull, push = ratios.get("pull", math.nan), ratios.get("push", math.nan)
    if pull > SAME_WITHIN:
        sentence += " The group split the partitions between its members, so work scaled with them, as the article says."
    elif pull == pull:
        sentence += " Adding group members did not speed pull mode up here, which contradicts the article's parallelism claim."
    if push == push and push <= SAME_WITHIN:
        sentence += " Each push subscriber processed every message: more subscribers multiplied the work, not the throughput."
    elif push == push:
        sentence += " Push's distinct rate grew with subscribers here, which the article does not predict."
    return sentence


def message_size(result: SweepResult) -> str:
    parts = []
    for mode in result.modes():
        p0, p1, low, high = _ends(result, mode, "p50_ms")
        q0, q1, _, _ = _ends(result, mode, "p99_ms")
        change, _ = _factor(p0, p1)
        parts.append(f"{mode}'s median latency {change} from {low} to {high} ({_ms(p0)} -> {_ms(p1)}, "
                     f"p99 {_ms(q0)} -> {_ms(q1)})")
    if not parts:
        return "Nothing was measured."
    sentence = "; ".join(parts) + "."
    if set(result.modes()) == {"pull", "push"}:
        _, push_big, _, label = _ends(result, "push", "p50_ms")
        _, pull_big, _, _ = _ends(result, "pull", "p50_ms")
        if push_big > pull_big * SAME_WITHIN:
            sentence += f" At {label} push was the slower of the two, in line with the article."
        elif pull_big > push_big * SAME_WITHIN:
            sentence += (f" At {label} push still had the lower latency: the article's \"Redis might not maintain "
                         f"ultra-low latency with larger messages\" does not show against pull mode here.")
        else:
            sentence += f" At {label} both modes had about the same latency."
    return sentence


def compression(result: SweepResult) -> str:
    rows = [(p.point.label, p.median("pull", "p50_ms"), p.median("pull", "p99_ms"))
            for p in result.points if p.runs.get("pull")]
    if not rows:
        return "Nothing was measured (compression is a pull-mode sweep)."
    none = next((r for r in rows if r[0] == "none"), None)
    best = min(rows, key=lambda r: r[1])
    worst = max(rows, key=lambda r: r[1])
    sentence = (f"Lowest median latency: {best[0]} ({_ms(best[1])}); highest: {worst[0]} ({_ms(worst[1])})")
    if none is not None:
        sentence += f"; uncompressed: {_ms(none[1])}."
        if best[0] == "none" or best[1] * SAME_WITHIN >= none[1]:
            sentence += (" On loopback no codec lowered latency: the network time compression saves is tiny "
                         "here, so its CPU cost (and decompression's) is what shows - the article's \"compress to "
                         "decrease latency\" needs a slower network.")
        else:
            sentence += f" {best[0]} lowered latency below uncompressed, as the article suggests."
    return sentence


def rate(result: SweepResult) -> str:
    parts = []
    for mode in result.modes():
        knee = None
        points = [p for p in result.points if p.runs.get(mode)]
        base_p99 = points[0].median(mode, "p99_ms") if points else math.nan
        for p in points:
            offered = p.point.x
            delivered = p.median(mode, "delivered_per_s")
            kept_up = p.point.label == "max" or delivered >= 0.9 * offered
            if kept_up and p.median(mode, "p99_ms") <= max(10 * base_p99, 5.0):
                knee = p
        top = max((p.median(mode, "delivered_per_s") for p in points), default=math.nan)
        if knee is None:
            parts.append(f"{mode} did not keep up even at the lowest rate (at most {_rate(top)})")
        else:
            parts.append(f"{mode} kept up with a p99 of at most {_ms(max(10 * base_p99, 5.0))} up to "
                         f"{knee.point.label} msg/s offered (p99 {_ms(knee.median(mode, 'p99_ms'))}) and peaked at "
                         f"{_rate(top)} delivered")
    return ("; ".join(parts) + ".") if parts else "Nothing was measured."


VERDICTS = {"baseline": baseline, "fan-out": fan_out, "parallelism": parallelism, "message-size": message_size,
            "compression": compression, "rate": rate}


def verdict(result: SweepResult) -> str:
    """The verdict sentence of a measured scenario."""
    if not any(p.runs for p in result.points):
        text = "Nothing was measured."
    else:
        text = VERDICTS[result.sweep.name](result)
        text = text[:1].upper() + text[1:]
    return ("Interrupted before the end, so these figures are partial. " + text) if result.interrupted else text
