"""The generic versioned codec: hand-made descriptors covering every encoding rule (classic and
flexible versions, compact and nullable types, tagged fields, defaults), the ApiVersions v3
request librdkafka sends first, and a smoke run over every descriptor in wire.kafka.messages."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.errors import LocalProtocolError, RemoteProtocolError
from wire.kafka import codec
from wire.kafka.framing import decode_request_header, peek_api_key_version
from wire.kafka.primitives import Reader
from wire.kafka.schema import (
    BOOL,
    BYTES,
    FLOAT64,
    INT8,
    INT16,
    INT32,
    INT64,
    RECORDS,
    STRING,
    UINT16,
    UUID,
    Array,
    Field,
    Message,
    Struct,
)

from wire.kafka import messages
from wire.kafka.messages.metadata import API_VERSIONS

# A tiny ApiVersions request of our own, so these tests do not depend on wire.kafka.messages.
API_VERSIONS_REQUEST = Message(
    "ApiVersionsRequest", 18, "request", valid="0-4", flexible="3+",
    fields=(
        Field("client_software_name", STRING, versions="3+"),
        Field("client_software_version", STRING, versions="3+"),
    ),
)

KCAT_API_VERSIONS_V3 = bytes.fromhex(
    "00000024"
    "0012" "0003" "00000001"
    "0007" + b"rdkafka".hex() + "00"
    "0b" + b"librdkafka".hex() + "06" + b"2.0.2".hex() + "00"
)

PARTITION = Struct("Partition", (
    Field("index", INT32),
    Field("leader_epoch", INT32, versions="2+", default=-1),
    Field("metadata", STRING, nullable="1+"),
    Field("replicas", Array(INT32)),
    Field("records", RECORDS, versions="1+", nullable="1+"),
    Field("note", STRING, versions="3+", tag=0, tagged="3+", default="none"),
))

# A message that exercises everything: absent-in-version fields, nullable per version, a
# nested struct array with its own tags, a plain nested struct, and top-level tags.
SAMPLE = Message(
    "SampleRequest", 1000, "request", valid="0-4", flexible="3+",
    fields=(
        Field("flag", BOOL),
        Field("small", INT8, versions="1+"),
        Field("count", INT16),
        Field("port", UINT16, versions="2+"),
        Field("big", INT64, default=-1),
        Field("ratio", FLOAT64, versions="2+"),
        Field("topic_id", UUID, versions="2+"),
        Field("name", STRING, nullable="2+"),
        Field("blob", BYTES, versions="1+", nullable="1+"),
        Field("partitions", Array(PARTITION), nullable="3+"),
        Field("leader", Struct("Leader", (
            Field("id", INT32, default=-1),
            Field("host", STRING),
        )), versions="1+"),
        Field("cluster_id", STRING, versions="3+", nullable="3+", tag=0, tagged="3+"),
        Field("epoch", INT32, versions="3+", tag=5, tagged="3+", default=-1),
    ),
)


def test_kcat_api_versions_v3_golden():
    frame = KCAT_API_VERSIONS_V3[4:]
    assert int.from_bytes(KCAT_API_VERSIONS_V3[:4], "big") == len(frame) == 36
    assert peek_api_key_version(frame) == (18, 3, 1)
    header, offset = decode_request_header(frame, flexible=True)
    assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == (18, 3, 1, "rdkafka")
    body = codec.decode(API_VERSIONS_REQUEST, 3, memoryview(frame)[offset:])
    assert body == {"client_software_name": "librdkafka", "client_software_version": "2.0.2"}
    assert codec.encode(API_VERSIONS_REQUEST, 3, body) == frame[offset:]


def test_kcat_example_with_the_real_descriptor():
    frame = KCAT_API_VERSIONS_V3[4:]
    _, offset = decode_request_header(frame, flexible=True)
    body = codec.decode(API_VERSIONS.request, 3, Reader(frame, offset))
    assert body["client_software_name"] == "librdkafka"


def test_absent_fields_take_defaults_and_are_not_written():
    # v0: flag, count, big, name (classic, not nullable), partitions.
    data = codec.encode(SAMPLE, 0, {"flag": True, "count": 7, "name": "n"})
    assert data.hex() == "01" "0007" "ffffffffffffffff" "0001" "6e" "00000000"
    value = codec.decode(SAMPLE, 0, data)
    assert value["small"] == 0 and value["port"] == 0 and value["ratio"] == 0.0
    assert value["topic_id"] == uuid.UUID(int=0)
    assert value["blob"] is None  # nullable in some version -> null default
    assert value["leader"] == {"id": -1, "host": ""}
    assert value["cluster_id"] is None and value["epoch"] == -1
    assert value["partitions"] == []


def test_flexible_version_golden():
    data = codec.encode(SAMPLE, 3, {"name": None, "partitions": None, "epoch": 9})
    assert data.hex() == (
        "00" "00" "0000" "0000"  # flag, small, count, port
        "ffffffffffffffff"  # big: its default -1
        "0000000000000000"  # ratio
        + "00" * 16  # topic_id: the zero uuid
        + "00"  # name: compact null
        "00"  # blob: nullable without a default -> null
        "00"  # partitions: compact null array
        "ffffffff" "01" "00"  # leader struct: id -1, host "" (compact), its own empty tag section
        "01" "05" "04" "00000009"  # top-level tags: one field, tag 5, 4 bytes, int32 9
    )
    value = codec.decode(SAMPLE, 3, data)
    assert value["name"] is None and value["partitions"] is None
    assert value["epoch"] == 9 and value["cluster_id"] is None


def test_tagged_fields_omitted_at_default_and_sorted():
    data = codec.encode(SAMPLE, 3, {"cluster_id": "c", "epoch": -1})
    assert data.endswith(bytes.fromhex("01" "00" "02" "0263"))
    data = codec.encode(SAMPLE, 3, {"cluster_id": "c", "epoch": 1})
    assert data.endswith(bytes.fromhex("02" "00" "02" "0263" "05" "04" "00000001"))


def test_unknown_tags_are_skipped():
    tiny = Message("Tiny", 1001, "request", valid="0", flexible="0+", fields=(Field("a", INT8),))
    data = bytes.fromhex("05" "02" "07" "03" "aabbcc" "09" "00")
    assert codec.decode(tiny, 0, data) == {"a": 5}


def test_nested_struct_arrays_round_trip_in_every_version():
    values = {
        "flag": True, "small": -3, "count": 2, "port": 65535, "big": 1 << 40, "ratio": 0.25,
        "topic_id": uuid.UUID(int=12345), "name": "x", "blob": b"\x00\x01",
        "partitions": [
            {"index": 0, "leader_epoch": 4, "metadata": "m", "replicas": [1, 2, 3],
             "records": b"RECS", "note": "hello"},
            {"index": 1, "leader_epoch": -1, "metadata": None, "replicas": [],
             "records": None, "note": "none"},
        ],
        "leader": {"id": 1, "host": "h"},
        "cluster_id": "cid", "epoch": 3,
    }
    for version in range(5):
        present = {k: v for k, v in values.items() if _exists(SAMPLE, k, version)}
        if version < 2:
            present["name"] = "x"
            for part in present["partitions"]:
                if version == 0:
                    part["metadata"] = "m"
        data = codec.encode(SAMPLE, version, _deep_copy(present))
        decoded = codec.decode(SAMPLE, version, data)
        assert codec.encode(SAMPLE, version, decoded) == data
        for key, expected in present.items():
            if key == "partitions":
                for got, want in zip(decoded[key], expected):
                    for field in PARTITION.fields:
                        if field.exists_in(version):
                            value = got[field.name]
                            assert (bytes(value) if isinstance(value, memoryview) else value) == want[field.name]
            else:
                assert decoded[key] == expected, key


def _exists(message: Message, name: str, version: int) -> bool:
    return next(f for f in message.fields if f.name == name).exists_in(version)


def _deep_copy(values):
    if isinstance(values, dict):
        return {k: _deep_copy(v) for k, v in values.items()}
    if isinstance(values, list):
        return [_deep_copy(v) for v in values]
    return values


def test_records_decode_without_copy():
    data = codec.encode(SAMPLE, 1, {"partitions": [{"records": b"abc", "metadata": "m"}], "name": ""})
    value = codec.decode(SAMPLE, 1, data)
    records = value["partitions"][0]["records"]
    assert isinstance(records, memoryview) and bytes(records) == b"abc"


def test_encode_rejects_our_mistakes():
    with pytest.raises(LocalProtocolError, match="unknown field"):
        codec.encode(SAMPLE, 0, {"flagg": True})
    with pytest.raises(LocalProtocolError, match="unknown field"):
        codec.encode(SAMPLE, 0, {"partitions": [{"indx": 1}]})
    with pytest.raises(LocalProtocolError, match="name"):
        codec.encode(SAMPLE, 1, {"name": None})  # nullable only from v2
    with pytest.raises(LocalProtocolError, match="partitions"):
        codec.encode(SAMPLE, 2, {"partitions": None})  # nullable only from v3
    with pytest.raises(LocalProtocolError, match="count"):
        codec.encode(SAMPLE, 0, {"count": 1 << 20})
    with pytest.raises(LocalProtocolError, match="count"):
        codec.encode(SAMPLE, 0, {"count": "seven"})
    with pytest.raises(LocalProtocolError, match="no version"):
        codec.encode(SAMPLE, 9, {})


def test_decode_rejects_peer_mistakes():
    good = codec.encode(SAMPLE, 0, {"name": "n"})
    with pytest.raises(RemoteProtocolError, match="trailing"):
        codec.decode(SAMPLE, 0, good + b"\x00")
    with pytest.raises(RemoteProtocolError):
        codec.decode(SAMPLE, 0, good[:-1])
    # Null name in v0, where it is not nullable.
    bad = good[: 1 + 2 + 8] + b"\xff\xff" + good[1 + 2 + 8 + 3 :]
    with pytest.raises(RemoteProtocolError):
        codec.decode(SAMPLE, 0, bad)


def test_reader_input_is_left_positioned_after_the_body():
    data = codec.encode(SAMPLE, 0, {"name": "n"})
    reader = Reader(data + b"\xee")
    codec.decode(SAMPLE, 0, reader)
    assert reader.remaining == 1


def test_nullable_struct_field():
    message = Message("N", 1002, "response", valid="0", flexible="0+", fields=(
        Field("assignment", Struct("Assignment", (Field("x", INT8),)), nullable="0+"),
    ))
    assert codec.encode(message, 0, {"assignment": None}) == b"\xff\x00"
    assert codec.encode(message, 0, {"assignment": {"x": 2}}) == b"\x01\x02\x00\x00"
    assert codec.decode(message, 0, b"\x01\x02\x00\x00") == {"assignment": {"x": 2}}
    assert codec.decode(message, 0, b"\xff\x00") == {"assignment": None}


def test_decoded_defaults_are_fresh():
    a = codec.decode(SAMPLE, 0, codec.encode(SAMPLE, 0, {}))
    b = codec.decode(SAMPLE, 0, codec.encode(SAMPLE, 0, {}))
    a["partitions"].append(1)
    a["leader"]["id"] = 5
    assert b["partitions"] == [] and b["leader"]["id"] == -1


def test_json_style_defaults_are_understood():
    message = Message("D", 1003, "request", valid="0-1", flexible="none", fields=(
        Field("a", INT32, versions="1+", default="-1"),
        Field("b", BOOL, versions="1+", default="true"),
        Field("c", STRING, versions="1+", nullable="1+", default="null"),
    ))
    assert codec.decode(message, 0, b"") == {"a": -1, "b": True, "c": None}


def test_plans_are_cached():
    assert codec.compile_plan(SAMPLE, 3) is codec.compile_plan(SAMPLE, 3)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4), st.binary(max_size=120))
def test_arbitrary_bytes_decode_to_a_value_or_a_remote_error(version, data):
    try:
        codec.decode(SAMPLE, version, data)
    except RemoteProtocolError:
        pass


PARTITION_VALUES = st.fixed_dictionaries({
    "index": st.integers(-(2**31), 2**31 - 1),
    "leader_epoch": st.integers(-(2**31), 2**31 - 1),
    "metadata": st.one_of(st.none(), st.text(max_size=10)),
    "replicas": st.lists(st.integers(-(2**31), 2**31 - 1), max_size=4),
    "records": st.one_of(st.none(), st.binary(max_size=20)),
    "note": st.text(max_size=5),
})


@settings(deadline=None)
@given(
    st.lists(PARTITION_VALUES, max_size=3),
    st.one_of(st.none(), st.text(max_size=10)),
    st.integers(-(2**31), 2**31 - 1),
)
def test_flexible_round_trip(partitions, cluster_id, epoch):
    values = {"partitions": partitions, "cluster_id": cluster_id, "epoch": epoch, "name": "n"}
    data = codec.encode(SAMPLE, 4, values)
    decoded = codec.decode(SAMPLE, 4, data)
    assert decoded["cluster_id"] == cluster_id and decoded["epoch"] == epoch
    for got, want in zip(decoded["partitions"], partitions, strict=True):
        got = dict(got, records=None if got["records"] is None else bytes(got["records"]))
        assert got == want


# --- every real descriptor, every version we serve ---------------------------------------------

@pytest.mark.parametrize("message", messages.MESSAGES, ids=lambda m: m.name)
def test_every_descriptor_round_trips_its_defaults(message):
    low = int(message.valid.split("-")[0].rstrip("+"))
    high = int(message.valid.split("-")[-1].rstrip("+"))
    for version in range(low, high + 1):
        data = codec.encode(message, version, {})
        decoded = codec.decode(message, version, data)
        assert codec.encode(message, version, decoded) == data


@settings(max_examples=400, deadline=None)
@given(st.data(), st.binary(max_size=200))
def test_arbitrary_bytes_into_every_real_descriptor(data, payload):
    message = data.draw(st.sampled_from(messages.MESSAGES), label="message")
    low = int(message.valid.split("-")[0].rstrip("+"))
    high = int(message.valid.split("-")[-1].rstrip("+"))
    version = data.draw(st.integers(low, high), label="version")
    try:
        codec.decode(message, version, payload)
    except RemoteProtocolError:
        pass
