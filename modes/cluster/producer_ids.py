"""Producer ids unique across the cluster: blocks handed out from one counter in etcd.

An idempotent producer is known by its producer id on every partition it writes, whichever
broker gave it the id. Two brokers counting on their own would give two producers the same
id, and the second one's batches would be refused (OUT_OF_ORDER_SEQUENCE_NUMBER) or, worse,
dropped as duplicates of the first one's. Kafka has its controller hand out blocks of 1000
ids from one counter (ZooKeeper's ``/latest_producer_id_block``, then KRaft's log); dualmq
keeps the counter in etcd (docs/cluster.md#producer-ids):

* ``/dualmq/producer-ids`` holds the first id no broker has been given yet, in ASCII digits;
* a broker whose block is used up reads it, takes ``[max(counter, floor), + block size)`` and
  writes the new end with a txn compared on the key's mod revision (or its absence), retried
  when another broker got there first. ``floor`` is above every id the broker knows of (its
  own earlier blocks, ids met in its logs), so a cluster formed from brokers that ran alone
  before never hands out an id already in a log.

The block is then adopted by the broker's ``ProducerIdManager`` (broker/producers.py), which
also saves its end locally. Each allocation is bounded in time; etcd unreachable is
``CoordinationError``, which InitProducerId answers COORDINATOR_NOT_AVAILABLE (clients retry).
"""

from __future__ import annotations

import re

import trio

from broker.cluster.model import PRODUCER_IDS, ClusterDataInvalid, CoordinationError
from broker.loggers import get_logger
from broker.producers import MAX_PRODUCER_ID, ProducerIdManager
from modes.cluster.etcd import Compare, EtcdClient, EtcdError, put_op

log = get_logger(__name__)

ALLOCATE_TIMEOUT_S = 5.0
_DIGITS = re.compile(rb"[0-9]{1,19}")


def parse_counter(value: bytes) -> int:
    """The counter's value.

    Raises:
        ClusterDataInvalid: not what dualmq writes (digits, at most int64's largest).
    """
    if _DIGITS.fullmatch(value) is None or int(value) > MAX_PRODUCER_ID:
        raise ClusterDataInvalid(f"{PRODUCER_IDS.decode()}: {value[:40]!r} is not a producer id counter")
    return int(value)


async def allocate_block(etcd: EtcdClient, size: int, floor: int) -> tuple[int, int]:
    """Reserve ``size`` ids for this broker: ``(start, end)``, ``start >= floor``.

    Raises:
        CoordinationError: etcd unreachable or refusing, a damaged counter, or no answer
            within ``ALLOCATE_TIMEOUT_S``.
    """
    try:
        with trio.fail_after(ALLOCATE_TIMEOUT_S):
            while True:
                kvs, _ = await etcd.range(PRODUCER_IDS)
                if kvs:
                    start = max(parse_counter(kvs[0].value), floor)
                    guard = Compare(PRODUCER_IDS, "MOD", kvs[0].mod_revision)
                else:
                    start, guard = floor, Compare.absent(PRODUCER_IDS)
                end = start + size
                if end > MAX_PRODUCER_ID:
                    raise ClusterDataInvalid(f"producer ids exhausted: the counter is at {start}")
                done = await etcd.txn([guard], [put_op(PRODUCER_IDS, str(end).encode())])
                if done.succeeded:
                    log.info("producer_id_block_allocated", start=start, end=end)
                    return start, end
    except (EtcdError, ClusterDataInvalid) as exc:
        raise CoordinationError(f"cannot reserve producer ids in etcd: {exc}") from exc
    except trio.TooSlowError:
        raise CoordinationError(f"etcd did not reserve producer ids within {ALLOCATE_TIMEOUT_S:g} s") from None


async def ensure_block(etcd: EtcdClient, ids: ProducerIdManager, lock: trio.Lock) -> None:
    """Give ``ids`` a block from the cluster if it has none left (one allocation at a time:
    InitProducerIds arriving together share it).

    Raises:
        CoordinationError: see ``allocate_block``.
    """
    async with lock:
        if ids.needs_block:
            start, end = await allocate_block(etcd, ids.block_size, ids.floor)
            ids.adopt_block(start, end)
