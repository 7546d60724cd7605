"""Retries and dead letters: process every record, and park the ones that keep failing.

    await consume(consumer, handle, retries=3, backoff=0.5, dead_letter_topic="orders.dlq")

The problem: a consumer reads a partition in order. If one record makes the handler fail every
time (a "poison pill"), retrying it forever blocks the whole partition; skipping it silently
loses it. Pulsar answers with redelivery limits and a dead-letter topic; we do the same in the
client, so the wire stays plain Kafka and any Kafka tool can read the dead letters.

The rules: the handler is called per record. On an exception it is retried after ``backoff``
seconds, up to ``retries`` more times (so at most ``retries + 1`` attempts; each attempt may be
bounded by ``handler_timeout``). If every attempt failed, the record is produced to
``dead_letter_topic`` — same key, value and headers, plus headers that say what happened:

    dlq.error             "ExceptionType: message" of the last failure
    dlq.attempts          number of attempts made, in decimal
    dlq.origin.topic      where it came from
    dlq.origin.partition
    dlq.origin.offset
    dlq.origin.timestamp

Only once the dead letter is acknowledged do we commit and move on, so a crash in between
re-delivers the record rather than losing it: nothing lost, nothing blocking forever. Without a
dead-letter topic the final failure is raised instead (the caller decides).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Protocol

import attrs
import trio

from dualmq.pull.producer import Producer
from dualmq.pull.records import ConsumerRecord, TopicPartition
from dualmq.sdk_logging import get_logger

__all__ = ["ConsumeStats", "RecordSource", "consume", "dead_letter_headers"]

log = get_logger(__name__)

Handler = Callable[[ConsumerRecord], Awaitable[object]]
Backoff = float | Callable[[int], float]


class RecordSource(Protocol):
    """What ``consume`` needs of a consumer; ``dualmq.pull.Consumer`` is one.

    Written as a protocol so that this module depends on the record type only, not on the
    ``Consumer`` class: the consumer offers ``Consumer.consume`` by calling into this module,
    and the dependency runs one way.
    """

    bootstrap: str | Iterable[str]
    group_id: str | None

    def __aiter__(self) -> AsyncIterator[ConsumerRecord]: ...

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None: ...


@attrs.define
class ConsumeStats:
    """Counts from one ``consume`` run."""

    processed: int = 0      # records the handler eventually accepted
    retries: int = 0        # handler calls that were retries
    dead_lettered: int = 0  # records parked in the dead-letter topic


def dead_letter_headers(record: ConsumerRecord, error: BaseException, attempts: int) -> list[tuple[str, bytes]]:
    """The headers of a dead letter: the record's own, then the ``dlq.*`` ones.

    Args:
        record: the record that failed.
        error: the last exception the handler raised.
        attempts: how many times the handler was called for it.

    Returns:
        ``[(name, value), ...]`` with UTF-8 / decimal ASCII values.
    """
    text = f"{type(error).__name__}: {error}"
    return [
        *record.headers,
        ("dlq.error", text.encode("utf-8", "replace")),
        ("dlq.attempts", str(attempts).encode()),
        ("dlq.origin.topic", record.topic.encode()),
        ("dlq.origin.partition", str(record.partition).encode()),
        ("dlq.origin.offset", str(record.offset).encode()),
        ("dlq.origin.timestamp", str(record.timestamp).encode()),
    ]


def _delay(backoff: Backoff, attempt: int) -> float:
    return backoff(attempt) if callable(backoff) else backoff


async def consume(consumer: RecordSource, handler: Handler, *, retries: int = 3, backoff: Backoff = 0.1,
                  dead_letter_topic: str | None = None, producer: Producer | None = None,
                  handler_timeout: float | None = None, max_records: int | None = None) -> ConsumeStats:
    """Run ``handler`` on every record of ``consumer``, with retries and a dead-letter topic.

    Args:
        consumer: an entered ``Consumer`` (or anything else that is a ``RecordSource``).
        handler: ``async def handler(record)``; any ``Exception`` counts as a failure.
        retries: extra attempts after the first failure (>= 0).
        backoff: seconds between attempts, or ``f(attempt_number) -> seconds``.
        dead_letter_topic: where records go after their last failed attempt; None = raise it.
        producer: an entered ``Producer`` for dead letters (default: one opened here on the
            consumer's bootstrap servers, acks="all").
        handler_timeout: seconds per attempt; a slower attempt is cancelled and counts as a
            failure (so a hung handler cannot block the partition forever either).
        max_records: stop after this many records (processed or dead-lettered); None = run
            until cancelled.

    Returns:
        The counts (when ``max_records`` is reached).

    Raises:
        Exception: the handler's last error, when there is no ``dead_letter_topic``.
    """
    if retries < 0:
        raise ValueError("retries must be >= 0")
    if dead_letter_topic is None or producer is not None:
        return await _consume(consumer, handler, retries, backoff, dead_letter_topic, producer, handler_timeout,
                              max_records)
    async with Producer(consumer.bootstrap, client_id="dualmq-dead-letters") as own_producer:
        return await _consume(consumer, handler, retries, backoff, dead_letter_topic, own_producer,
                              handler_timeout, max_records)


async def _consume(consumer: RecordSource, handler: Handler, retries: int, backoff: Backoff,
                   dead_letter_topic: str | None, producer: Producer | None, handler_timeout: float | None,
                   max_records: int | None) -> ConsumeStats:
    stats = ConsumeStats()
    if max_records is not None and max_records <= 0:
        return stats
    async for record in consumer:
        attempt = 0
        while True:
            attempt += 1
            try:
                if handler_timeout is None:
                    await handler(record)
                else:
                    with trio.fail_after(handler_timeout):
                        await handler(record)
            # Deliberately broad: *any* failure of application code is what this feature is
            # for. It is never swallowed — it is retried, then recorded in the dead letter's
            # headers and logged. Cancellation is a BaseException and passes through.
            except Exception as exc:  # noqa: BLE001  (TooSlowError from handler_timeout included)
                if attempt <= retries:
                    stats.retries += 1
                    log.debug("handler_retried", topic=record.topic, partition=record.partition,
                             offset=record.offset, attempt=attempt, error=repr(exc))
                    await trio.sleep(_delay(backoff, attempt))
                    continue
                if dead_letter_topic is None:
                    raise
                await producer.send(dead_letter_topic, record.value, key=record.key,
                                    headers=dead_letter_headers(record, exc, attempt))
                stats.dead_lettered += 1
                log.info("record_dead_lettered", topic=record.topic, partition=record.partition,
                            offset=record.offset, attempts=attempt, dead_letter_topic=dead_letter_topic,
                            error=repr(exc))
                if consumer.group_id is not None:
                    # The dead letter is durable: make "moved on" durable too.
                    await consumer.commit({(record.topic, record.partition): record.offset + 1})
                break
            else:
                stats.processed += 1
                break
        if max_records is not None and stats.processed + stats.dead_lettered >= max_records:
            break
    return stats
