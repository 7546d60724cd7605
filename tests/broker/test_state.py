"""BrokerState: everything under the data dir opened and closed in one place, under its lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broker.config import BrokerConfig
from broker.errors import DamagedFile, DataDirError
from broker.state import OFFSETS_DIR, PRODUCER_IDS_DIR, BrokerState
from tests.broker.batches import build_batch

T0 = 1_700_000_000_000


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_open_gives_every_part_and_close_makes_it_durable(tmp_path: Path) -> None:
    config = BrokerConfig(data_dir=tmp_path / "data")
    state = BrokerState.open(config, now_ms=T0)
    topic = state.topics.create("t", 2, now_ms=T0)
    idempotent = build_batch(2, producer_id=0, producer_epoch=0, base_sequence=0)
    topic.partitions[1].append(idempotent, T0)
    assert state.offsets.commit("g", "t", 1, 2, -1, None, T0).name == "NONE"
    assert state.producers.ids.init_producer_id().producer_id == 0
    assert state.pubsub.channels() == []  # push mode's channels: nothing on disk, none yet
    state.close()
    state.close()  # twice is harmless
    assert (tmp_path / "data" / OFFSETS_DIR).is_dir() and (tmp_path / "data" / PRODUCER_IDS_DIR).is_dir()

    again = BrokerState.open(config, now_ms=T0)
    assert again.topics.partition("t", 1).high_watermark == 2
    assert again.offsets.fetch("g", "t", 1).offset == 2
    assert [g.group_id for g in again.groups.list_groups()] == ["g"]  # known from its commits
    # Producer state was rebuilt from the log: the batch's retry is a duplicate.
    table = again.producers.table(again.topics.get("t"), 1)
    assert table.check(0, 0, 0, 1).kind.name == "DUPLICATE"
    assert again.producers.ids.init_producer_id().producer_id >= 1  # no id is issued twice
    again.close()


def test_the_data_dir_is_locked_while_open(tmp_path: Path) -> None:
    config = BrokerConfig(data_dir=tmp_path / "data")
    state = BrokerState.open(config, now_ms=T0)
    before = open_descriptors()
    with pytest.raises(DataDirError, match="in use by another broker"):
        BrokerState.open(config, now_ms=T0)
    assert open_descriptors() == before
    state.close()
    BrokerState.open(config, now_ms=T0).close()  # released by close


def test_a_damaged_file_leaves_nothing_open_or_locked(tmp_path: Path) -> None:
    config = BrokerConfig(data_dir=tmp_path / "data")
    state = BrokerState.open(config, now_ms=T0)
    state.topics.create("t", 3, now_ms=T0)
    state.close()
    ids = tmp_path / "data" / PRODUCER_IDS_DIR / "producer_ids"
    ids.write_text("not a number")
    before = open_descriptors()
    # The producer ids are opened after the topics and the offsets: both are closed again.
    with pytest.raises(DamagedFile, match="producer_ids"):
        BrokerState.open(config, now_ms=T0)
    assert open_descriptors() == before
    ids.write_text("1000\n")  # the operator's repair
    BrokerState.open(config, now_ms=T0).close()


def test_an_unusable_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(DataDirError, match="cannot create data dir"):
        BrokerState.open(BrokerConfig(data_dir=tmp_path / "file"), now_ms=T0)
