"""Idempotent producers: ids and epochs, duplicate detection, gaps, fencing, rebuild."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from broker.errors import DamagedFile
from broker.outcome import ErrorKind
from broker.producers import (
    Decision,
    ProducerIdManager,
    ProducerStateTable,
    last_sequence,
)
from wire.kafka.batch import BatchHeader

MAX_SEQ = 2**31 - 1


def idempotent_header(producer_id: int, producer_epoch: int, base_sequence: int, last_offset_delta: int) -> BatchHeader:
    """The header of a batch of ``last_offset_delta + 1`` records from this producer."""
    return BatchHeader(base_offset=0, batch_length=49, partition_leader_epoch=0, magic=2, crc=0, attributes=0,
                       last_offset_delta=last_offset_delta, base_timestamp=0, max_timestamp=0,
                       producer_id=producer_id, producer_epoch=producer_epoch, base_sequence=base_sequence,
                       records_count=last_offset_delta + 1)


class Log:
    """A tiny partition: check, append, record — as the real log must do it."""

    def __init__(self, table=None):
        self.table = table or ProducerStateTable()
        self.batches: list[tuple[int, BatchHeader]] = []
        self.end = 0

    def produce(self, pid, epoch, seq, count):
        last = last_sequence(seq, count - 1)
        result = self.table.check(pid, epoch, seq, last)
        if result.kind is Decision.ACCEPT:
            base = self.end
            self.batches.append((base, idempotent_header(pid, epoch, seq, count - 1)))
            self.end += count
            self.table.record(pid, epoch, seq, last, base, self.end - 1, 0)
            return result.kind, base
        return result.kind, result.base_offset


def test_ids_are_monotonic_and_never_reused_across_restarts(tmp_path):
    manager = ProducerIdManager.open(tmp_path, block_size=10)
    ids = [manager.init_producer_id().producer_id for _ in range(3)]
    assert ids == [0, 1, 2]
    again = ProducerIdManager.open(tmp_path, block_size=10)  # restart (or crash)
    assert again.init_producer_id().producer_id == 10  # the rest of the block is skipped
    for _ in range(10):
        again.init_producer_id()
    third = ProducerIdManager.open(tmp_path, block_size=10)
    assert third.init_producer_id().producer_id == 30


def test_epoch_bump_and_stale_epoch(tmp_path):
    manager = ProducerIdManager.open(tmp_path)
    first = manager.init_producer_id()
    assert (first.error, first.producer_epoch) == (ErrorKind.NONE, 0)
    bumped = manager.init_producer_id(None, first.producer_id, 0)
    assert (bumped.producer_id, bumped.producer_epoch) == (first.producer_id, 1)
    assert manager.init_producer_id(None, first.producer_id, 0).error is ErrorKind.INVALID_PRODUCER_EPOCH
    assert manager.init_producer_id(None, 999, 0).error is ErrorKind.UNKNOWN_PRODUCER_ID
    assert manager.init_producer_id("tx").error is ErrorKind.TRANSACTIONS_UNSUPPORTED


def test_observe_raises_the_floor(tmp_path):
    (tmp_path / "producer_ids").write_text("0\n")
    manager = ProducerIdManager.open(tmp_path)
    manager.observe(41, 3)
    assert manager.init_producer_id().producer_id == 42
    assert manager.init_producer_id(None, 41, 3).producer_epoch == 4


def test_in_a_cluster_ids_come_only_from_adopted_blocks(tmp_path):
    manager = ProducerIdManager.open(tmp_path, block_size=10)
    assert manager.init_producer_id().producer_id == 0   # a past as a single broker: block [0, 10)
    manager.share_blocks()
    # The rest of the local block is not used: the cluster's counter may have given it away.
    assert manager.needs_block and manager.floor == 10
    assert manager.init_producer_id().error is ErrorKind.COORDINATOR_NOT_AVAILABLE
    manager.observe(57, 2)          # another broker's producer, met in a replicated log
    assert manager.floor == 58 and manager.needs_block
    with pytest.raises(ValueError):
        manager.adopt_block(30, 40)  # below an id already in a log
    manager.adopt_block(100, 102)
    assert [manager.init_producer_id().producer_id for _ in range(2)] == [100, 101]
    assert manager.needs_block and manager.init_producer_id().error is ErrorKind.COORDINATOR_NOT_AVAILABLE
    manager.observe(500, 0)         # a foreign id does not move this broker's next id ...
    manager.adopt_block(600, 610)
    assert manager.init_producer_id().producer_id == 600
    # ... and a bump is answered with a new id (the producer's id may be another broker's,
    # whose epoch only that broker knows), as Kafka answers non-transactional producers.
    bumped = manager.init_producer_id(None, 57, 2)
    assert (bumped.error, bumped.producer_id, bumped.producer_epoch) == (ErrorKind.NONE, 601, 0)
    # The adopted block's end is saved locally: a later single-broker start goes on above it.
    assert ProducerIdManager.open(tmp_path, block_size=10).init_producer_id().producer_id == 610


def test_duplicate_gets_original_offset_and_no_second_append():
    log = Log()
    assert log.produce(7, 0, 0, 3) == (Decision.ACCEPT, 0)
    assert log.produce(7, 0, 3, 2) == (Decision.ACCEPT, 3)
    assert log.produce(7, 0, 0, 3) == (Decision.DUPLICATE, 0)
    assert log.produce(7, 0, 3, 2) == (Decision.DUPLICATE, 3)
    assert log.end == 5
    assert log.table.check(7, 0, 3, 4).error is ErrorKind.NONE


def test_only_last_five_batches_are_remembered():
    log = Log()
    for i in range(6):
        log.produce(1, 0, i, 1)
    kind, _ = log.produce(1, 0, 0, 1)  # batch 0 forgotten: now it looks like a gap
    assert kind is Decision.OUT_OF_ORDER_SEQUENCE
    assert log.produce(1, 0, 1, 1) == (Decision.DUPLICATE, 1)


def test_gap_is_out_of_order():
    log = Log()
    log.produce(1, 0, 0, 2)
    assert log.produce(1, 0, 3, 1)[0] is Decision.OUT_OF_ORDER_SEQUENCE
    assert log.table.check(1, 0, 3, 3).error is ErrorKind.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.produce(1, 0, 1, 1)[0] is Decision.OUT_OF_ORDER_SEQUENCE  # overlapping, not equal


def test_unknown_producer_accepted_at_any_sequence():
    log = Log()
    assert log.produce(1, 0, 17, 1)[0] is Decision.ACCEPT
    assert log.table.check(2, 0, -1, -1).kind is Decision.OUT_OF_ORDER_SEQUENCE


def test_epochs():
    log = Log()
    log.produce(1, 1, 0, 1)
    assert log.produce(1, 0, 1, 1)[0] is Decision.INVALID_PRODUCER_EPOCH
    assert log.table.check(1, 0, 1, 1).error is ErrorKind.INVALID_PRODUCER_EPOCH
    assert log.produce(1, 2, 5, 1)[0] is Decision.OUT_OF_ORDER_SEQUENCE  # new epoch: seq 0
    assert log.produce(1, 2, 0, 1)[0] is Decision.ACCEPT
    assert log.produce(1, 1, 1, 1)[0] is Decision.INVALID_PRODUCER_EPOCH  # old epoch fenced


def test_non_idempotent_always_accepted():
    log = Log()
    for _ in range(3):
        assert log.produce(-1, -1, -1, 1)[0] is Decision.ACCEPT
    assert log.end == 3


def test_sequence_wraparound():
    assert last_sequence(MAX_SEQ, 1) == 0
    assert last_sequence(MAX_SEQ - 1, 3) == 1
    log = Log()
    log.produce(1, 0, MAX_SEQ - 1, 2)  # covers MAX-1, MAX
    assert log.produce(1, 0, 0, 2) == (Decision.ACCEPT, 2)
    assert log.produce(1, 0, MAX_SEQ - 1, 2) == (Decision.DUPLICATE, 0)
    log2 = Log()
    log2.produce(1, 0, MAX_SEQ, 3)  # wraps inside the batch: MAX, 0, 1
    assert log2.produce(1, 0, 2, 1)[0] is Decision.ACCEPT


def test_rebuild_after_restart_still_detects_duplicates():
    log = Log()
    log.produce(1, 0, 0, 2)
    log.produce(2, 3, 10, 4)
    log.produce(1, 0, 2, 2)
    rebuilt = ProducerStateTable.rebuilt(log.batches)
    again = Log(rebuilt)
    again.end = log.end
    assert again.produce(1, 0, 2, 2) == (Decision.DUPLICATE, 6)
    assert again.produce(2, 3, 10, 4) == (Decision.DUPLICATE, 2)
    assert again.produce(2, 2, 14, 1)[0] is Decision.INVALID_PRODUCER_EPOCH
    assert again.produce(1, 0, 4, 1)[0] is Decision.ACCEPT
    assert rebuilt.producers() == {1: 0, 2: 3}


def test_remove_expired():
    table = ProducerStateTable()
    table.record(1, 0, 0, 0, 0, 0, now_ms=0)
    table.record(2, 0, 0, 0, 1, 1, now_ms=1000)
    assert table.remove_expired(1500, expiration_ms=1000) == 1
    assert table.producers() == {2: 0}


class ProducerModel(RuleBasedStateMachine):
    """Producers send, retry and skip batches; the table must agree with a plain model."""

    def __init__(self):
        super().__init__()
        self.log = Log()
        # model: pid -> (epoch, list of (first, last, base_offset)) ; the last 5 batches
        self.model: dict[int, tuple[int, list[tuple[int, int, int]]]] = {}
        self.next_seq: dict[int, int] = {}

    def expected(self, pid, epoch, seq, last):
        if pid not in self.model:
            return Decision.ACCEPT, None
        cur, batches = self.model[pid]
        if epoch < cur:
            return Decision.INVALID_PRODUCER_EPOCH, None
        if epoch > cur:
            return (Decision.ACCEPT if seq == 0 else Decision.OUT_OF_ORDER_SEQUENCE), None
        for first, lst, base in batches:
            if (first, lst) == (seq, last):
                return Decision.DUPLICATE, base
        if seq == (batches[-1][1] + 1) % 2**31:
            return Decision.ACCEPT, None
        return Decision.OUT_OF_ORDER_SEQUENCE, None

    @rule(pid=st.integers(0, 2), epoch=st.integers(0, 2),
          seq=st.one_of(st.integers(0, 12), st.integers(MAX_SEQ - 3, MAX_SEQ)),
          count=st.integers(1, 4))
    def produce(self, pid, epoch, seq, count):
        last = last_sequence(seq, count - 1)
        want, dup_base = self.expected(pid, epoch, seq, last)
        end_before = self.log.end
        kind, base = self.log.produce(pid, epoch, seq, count)
        assert kind is want
        if kind is Decision.DUPLICATE:
            assert base == dup_base
        if kind is Decision.ACCEPT:
            cur = self.model.get(pid)
            batches = [] if cur is None or epoch > cur[0] else cur[1]
            batches = (batches + [(seq, last, end_before)])[-5:]
            self.model[pid] = (epoch, batches)
        else:
            assert self.log.end == end_before

    @rule(pid=st.integers(0, 2))
    def produce_next_in_order(self, pid):
        if pid in self.model:
            epoch, batches = self.model[pid]
            self.produce(pid, epoch, (batches[-1][1] + 1) % 2**31, 2)

    @rule()
    def restart(self):
        table = ProducerStateTable.rebuilt(self.log.batches)
        end = self.log.end
        batches = self.log.batches
        self.log = Log(table)
        self.log.batches, self.log.end = batches, end


TestProducerModel = ProducerModel.TestCase
TestProducerModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


# --------------------------------------------------------------- a damaged producer_ids file


@pytest.mark.parametrize("content", [
    b"garbage\n", b"", b"\n", b"-5\n", b"+5\n", b"1_000\n", b"12.0\n", b"\xff\xfe\x00",
    "١٢\n".encode(), b"99999999999999999999\n", b"12 13\n",
])
def test_a_damaged_producer_id_file_is_refused_naming_it(tmp_path, content):
    # Starting from a guessed number could hand out an id again; a new producer with an old
    # id would see its first batches dropped as "duplicates" of the old producer's.
    (tmp_path / "producer_ids").write_bytes(content)
    with pytest.raises(DamagedFile) as refused:
        ProducerIdManager.open(tmp_path)
    message = str(refused.value)
    assert str(tmp_path / "producer_ids") in message and "damaged" in message
    assert "\n" not in message
    assert (tmp_path / "producer_ids").read_bytes() == content  # left as it was, for the operator


@pytest.mark.parametrize(("content", "next_id"), [(b"0\n", 0), (b"1000\n", 1000), (b" 7 \n", 7),
                                                  (b"9223372036854775000", 9223372036854775000)])
def test_a_plain_number_is_accepted(tmp_path, content, next_id):
    (tmp_path / "producer_ids").write_bytes(content)
    assert ProducerIdManager.open(tmp_path, block_size=10).init_producer_id().producer_id == next_id


@given(st.binary(max_size=30))
def test_any_content_is_a_number_or_a_clean_refusal(content):
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "producer_ids").write_bytes(content)
        try:
            manager = ProducerIdManager.open(Path(directory))
        except DamagedFile:
            return
        assert manager.init_producer_id().producer_id == int(content)
