"""Error codes: spot-check numbers against Kafka's own table (``Errors.java`` in the Kafka client)."""

from wire.kafka.errors import ErrorCode


def test_numbers_match_kafka():
    expected = {
        "UNKNOWN_SERVER_ERROR": -1, "NONE": 0, "OFFSET_OUT_OF_RANGE": 1, "CORRUPT_MESSAGE": 2,
        "UNKNOWN_TOPIC_OR_PARTITION": 3, "INVALID_FETCH_SIZE": 4, "NOT_LEADER_OR_FOLLOWER": 6,
        "MESSAGE_TOO_LARGE": 10, "NOT_COORDINATOR": 16, "RECORD_LIST_TOO_LARGE": 18,
        "INVALID_REQUIRED_ACKS": 21, "REBALANCE_IN_PROGRESS": 27, "UNSUPPORTED_VERSION": 35,
        "INVALID_CONFIG": 40, "INVALID_REQUEST": 42, "INVALID_PRODUCER_EPOCH": 47,
        "UNKNOWN_PRODUCER_ID": 59, "GROUP_ID_NOT_FOUND": 69, "FETCH_SESSION_ID_NOT_FOUND": 70,
        "UNSUPPORTED_COMPRESSION_TYPE": 76, "MEMBER_ID_REQUIRED": 79, "GROUP_MAX_SIZE_REACHED": 81,
        "FENCED_INSTANCE_ID": 82, "INVALID_RECORD": 87, "UNKNOWN_TOPIC_ID": 100,
    }
    for name, code in expected.items():
        assert ErrorCode[name] == code


def test_lookup_and_retriable():
    assert ErrorCode.lookup(3) is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert ErrorCode.lookup(9999) == 9999
    assert ErrorCode.NOT_COORDINATOR.retriable
    assert not ErrorCode.ILLEGAL_GENERATION.retriable
