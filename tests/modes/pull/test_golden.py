"""Golden bytes: whole request and response frames for key (API, version) pairs, written out
by hand from Kafka's protocol description, so a change in our encoding (or in what we advertise)
shows up as a byte diff rather than as a confused client.
"""

from __future__ import annotations

import struct

from tests.modes.pull.raw import pull_broker

# What we advertise: (api_key, min, max), written out by hand on purpose. The broker builds its
# ApiVersions answer from the declarations in wire.kafka.messages; this table is the independent
# record of what real clients have been seeing, so any change to it is a visible decision.
ADVERTISED = [(0, 0, 9), (1, 4, 12), (2, 1, 7), (3, 0, 12), (8, 2, 8), (9, 1, 7), (10, 0, 3), (11, 0, 7),
              (12, 0, 4), (13, 0, 4), (14, 0, 4), (15, 0, 5), (16, 0, 4), (17, 0, 1), (18, 0, 4), (19, 2, 7),
              (20, 1, 6), (22, 0, 4), (23, 2, 4), (29, 1, 3), (30, 1, 3), (31, 1, 3), (32, 1, 4), (36, 0, 2),
              (37, 0, 3), (42, 0, 2)]

# A minimal RecordBatch v2: one record, null key, value "hi", CreateTime 1700000000000.
ONE_RECORD_BATCH = bytes.fromhex(
    "0000000000000000" "0000003a" "00000000" "02" "bbcc4115" "0000" "00000000"
    "0000018bcfe56800" "0000018bcfe56800" "ffffffffffffffff" "ffff" "ffffffff" "00000001"
    "100000000104686900"
)


def frame(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">i", len(body)) + body


async def test_api_versions_v0(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        # api_key 18, version 0, correlation 7, client_id "c"
        await client.send(frame(bytes.fromhex("0012 0000 00000007 0001 63")))
        entries = b"".join(struct.pack(">hhh", *e) for e in ADVERTISED)
        expected = frame(bytes.fromhex("00000007"), b"\x00\x00", struct.pack(">i", len(ADVERTISED)), entries)
        assert await client.read_frame() == expected


async def test_api_versions_v3_flexible_body_header_v0(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        # The request librdkafka 2.0.2 sends first.
        request = bytes.fromhex(
            "0012 0003 00000001 0007 72646b61666b61 00 0b 6c696272646b61666b61 06 322e302e32 00"
        )
        await client.send(frame(request))
        entries = b"".join(struct.pack(">hhh", *e) + b"\x00" for e in ADVERTISED)
        expected = frame(
            bytes.fromhex("00000001"),  # response header v0 even though v3 is flexible
            b"\x00\x00",  # error_code
            bytes([len(ADVERTISED) + 1]),  # compact array
            entries,
            b"\x00\x00\x00\x00",  # throttle_time_ms
            b"\x00",  # no tagged fields
        )
        assert await client.read_frame() == expected


async def test_api_versions_unknown_version_falls_back_to_v0_body(tmp_path):
    async with pull_broker(tmp_path) as broker:
        client = await broker.connect()
        # Version 99 with a body we must not even try to parse.
        await client.send(frame(bytes.fromhex("0012 0063 0000002a 0001 63 00 ffffffff")))
        expected = frame(bytes.fromhex("0000002a" "0023" "00000001" "0012 0000 0004"))
        assert await client.read_frame() == expected
        # The connection stays usable: the client retries with v0.
        await client.send(frame(bytes.fromhex("0012 0000 0000002b 0001 63")))
        assert (await client.read_frame())[4:8] == bytes.fromhex("0000002b")


async def test_metadata_v1(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        # topics = ["t"]
        await client.send(frame(bytes.fromhex("0003 0001 00000005 0001 63" "00000001 0001 74")))
        expected = frame(
            bytes.fromhex("00000005"),
            bytes.fromhex("00000001" "00000000" "0009") + b"127.0.0.1" + struct.pack(">i", broker.port)
            + bytes.fromhex("ffff"),  # brokers: node 0, host, port, rack null
            bytes.fromhex("00000000"),  # controller_id
            bytes.fromhex("00000001" "0000" "0001 74" "00"  # topic t, not internal
                          "00000001" "0000 00000000 00000000" "00000001 00000000" "00000001 00000000"),
        )
        assert await client.read_frame() == expected


async def test_metadata_v12(tmp_path):
    async with pull_broker(tmp_path) as broker:
        topic = broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        # header v2; topics = [{topic_id zero, name "t"}], allow_auto_topic_creation true,
        # include_topic_authorized_operations false
        await client.send(frame(bytes.fromhex("0003 000c 00000009 0001 63 00" "02" + "00" * 16 + "02 74 00" "01 00 00")))
        expected = frame(
            bytes.fromhex("00000009 00"),  # response header v1
            bytes.fromhex("00000000"),  # throttle
            bytes.fromhex("02 00000000 0a") + b"127.0.0.1" + struct.pack(">i", broker.port) + b"\x00\x00",
            b"\x0f" + b"dualmq-cluster",
            bytes.fromhex("00000000"),  # controller
            bytes.fromhex("02 0000 02 74") + topic.topic_id + b"\x00",
            bytes.fromhex("02 0000 00000000 00000000 00000000 02 00000000 02 00000000 01 00"),
            bytes.fromhex("80000000 00"),  # topic_authorized_operations "not requested", tags
            b"\x00",
        )
        assert await client.read_frame() == expected


async def test_produce_v9_then_fetch_v11(tmp_path):
    async with pull_broker(tmp_path) as broker:
        broker.topics.create("t", 1, now_ms=0)
        client = await broker.connect()
        produce = bytes.fromhex(
            "0000 0009 00000003 0001 63 00"  # header v2
            "00"  # transactional_id null
            "ffff 00007530"  # acks -1, timeout 30000
            "02 02 74 02 00000000"  # [t: [partition 0
        ) + bytes([len(ONE_RECORD_BATCH) + 1]) + ONE_RECORD_BATCH + bytes.fromhex("00 00 00")
        await client.send(frame(produce))
        expected = frame(bytes.fromhex(
            "00000003 00"
            "02 02 74 02 00000000 0000"
            "0000000000000000"  # base_offset 0
            "ffffffffffffffff"  # log_append_time -1
            "0000000000000000"  # log_start_offset 0
            "01 00 00"  # record_errors [], error_message null, tags
            "00"  # topic tags
            "00000000 00"  # throttle, tags
        ))
        assert await client.read_frame() == expected

        fetch = bytes.fromhex(
            "0001 000b 00000004 0001 63"
            "ffffffff 00000064 00000001 00100000 00"  # replica, max_wait 100, min_bytes 1, max_bytes, isolation
            "00000000 ffffffff"  # session 0, epoch -1
            "00000001 0001 74 00000001"
            "00000000 ffffffff 0000000000000000 ffffffffffffffff 00100000"
            "00000000 0000"  # no forgotten topics, rack ""
        )
        await client.send(frame(fetch))
        expected = frame(
            bytes.fromhex(
                "00000004"
                "00000000 0000 00000000"  # throttle, error, session 0
                "00000001 0001 74 00000001"
                "00000000 0000"
                "0000000000000001 0000000000000001 0000000000000000"  # hw, lso, log start
                "00000000 ffffffff"  # aborted [], preferred replica -1
            ),
            struct.pack(">i", len(ONE_RECORD_BATCH)),
            ONE_RECORD_BATCH,  # stored exactly as sent (base offset 0, epoch 0)
        )
        assert await client.read_frame() == expected
