"""Golden bytes for every reply shape in RESP2 and RESP3, pub/sub frames and requests."""

from __future__ import annotations

import pytest

from wire.errors import LocalProtocolError
from wire.resp import encoder as enc
from wire.resp import pubsub
from wire.resp.values import ErrorReply, Push, RespSet, SimpleString, Verbatim


def test_scalars() -> None:
    assert enc.simple("OK") == b"+OK\r\n"
    assert enc.simple("PONG") == b"+PONG\r\n"
    assert enc.error("ERR unknown command 'FOO', with args beginning with: ") == (
        b"-ERR unknown command 'FOO', with args beginning with: \r\n"
    )
    assert enc.error("ERR a\r\nb\nc") == b"-ERR a  b c\r\n"
    assert enc.integer(3) == b":3\r\n"
    assert enc.integer(-(2**63)) == b":-9223372036854775808\r\n"
    assert enc.bulk(b"hello") == b"$5\r\nhello\r\n"
    assert enc.bulk(b"") == b"$0\r\n\r\n"
    assert enc.bulk(b"a\r\nb") == b"$4\r\na\r\nb\r\n"


def test_simple_string_refuses_newlines() -> None:
    with pytest.raises(LocalProtocolError):
        enc.simple("a\r\nb")


def test_integer_refuses_more_than_64_bits() -> None:
    with pytest.raises(LocalProtocolError):
        enc.integer(2**63)


@pytest.mark.parametrize(
    ("call", "resp2", "resp3"),
    [
        (lambda p: enc.null(p), b"$-1\r\n", b"_\r\n"),
        (lambda p: enc.null_array(p), b"*-1\r\n", b"_\r\n"),
        (lambda p: enc.double(1.5, p), b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (lambda p: enc.double(10.0, p), b"$2\r\n10\r\n", b",10\r\n"),
        (lambda p: enc.double(1.23, p), b"$4\r\n1.23\r\n", b",1.23\r\n"),
        (lambda p: enc.double(float("inf"), p), b"$3\r\ninf\r\n", b",inf\r\n"),
        (lambda p: enc.double(float("-inf"), p), b"$4\r\n-inf\r\n", b",-inf\r\n"),
        (lambda p: enc.double(float("nan"), p), b"$3\r\nnan\r\n", b",nan\r\n"),
        (lambda p: enc.boolean(True, p), b":1\r\n", b"#t\r\n"),
        (lambda p: enc.boolean(False, p), b":0\r\n", b"#f\r\n"),
        (lambda p: enc.verbatim("hi", p), b"$2\r\nhi\r\n", b"=6\r\ntxt:hi\r\n"),
        (lambda p: enc.verbatim("# x", p, "mkd"), b"$3\r\n# x\r\n", b"=7\r\nmkd:# x\r\n"),
        (lambda p: enc.big_number(3492890328409238509324850943850943825024385, p),
         b"$43\r\n3492890328409238509324850943850943825024385\r\n",
         b"(3492890328409238509324850943850943825024385\r\n"),
        (lambda p: enc.map_([(enc.bulk(b"a"), enc.integer(1))], p),
         b"*2\r\n$1\r\na\r\n:1\r\n", b"%1\r\n$1\r\na\r\n:1\r\n"),
        (lambda p: enc.map_([], p), b"*0\r\n", b"%0\r\n"),
        (lambda p: enc.set_([enc.bulk(b"a"), enc.bulk(b"b")], p),
         b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", b"~2\r\n$1\r\na\r\n$1\r\nb\r\n"),
        (lambda p: enc.push([enc.bulk(b"x")], p), b"*1\r\n$1\r\nx\r\n", b">1\r\n$1\r\nx\r\n"),
    ],
)
def test_protocol_dependent_shapes(call, resp2: bytes, resp3: bytes) -> None:
    assert call(2) == resp2
    assert call(3) == resp3


def test_arrays() -> None:
    assert enc.array([]) == b"*0\r\n"
    assert enc.array([enc.bulk(b"a"), enc.integer(1)]) == b"*2\r\n$1\r\na\r\n:1\r\n"
    assert enc.array([enc.array([enc.integer(1)])]) == b"*1\r\n*1\r\n:1\r\n"


def hello_pairs(proto: int) -> list[tuple[bytes, bytes]]:
    b = enc.bulk
    return [
        (b(b"server"), b(b"redis")),
        (b(b"version"), b(b"7.0.15")),
        (b(b"proto"), enc.integer(proto)),
        (b(b"id"), enc.integer(5)),
        (b(b"mode"), b(b"standalone")),
        (b(b"role"), b(b"master")),
        (b(b"modules"), enc.array([])),
    ]


HELLO_BODY = (
    b"$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:%d\r\n"
    b"$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
    b"$7\r\nmodules\r\n*0\r\n"
)


def test_hello_reply_as_observed() -> None:
    """The HELLO 3 map byte for byte as redis-server 7.0.15 sends it; HELLO in RESP2 is the flat
    *14 array (docs/resp.md#resp2-and-resp3)."""
    assert enc.map_(hello_pairs(3), 3) == b"%7\r\n" + HELLO_BODY % 3
    assert enc.map_(hello_pairs(2), 2) == b"*14\r\n" + HELLO_BODY % 2


def test_generic_encode() -> None:
    assert enc.encode(b"x", 2) == b"$1\r\nx\r\n"
    assert enc.encode("é", 2) == b"$2\r\n\xc3\xa9\r\n"
    assert enc.encode(SimpleString("OK"), 3) == b"+OK\r\n"
    assert enc.encode(ErrorReply("ERR x"), 3) == b"-ERR x\r\n"
    assert enc.encode(7, 2) == b":7\r\n"
    assert enc.encode(2**64, 3) == b"(18446744073709551616\r\n"
    assert enc.encode(True, 2) == b":1\r\n"
    assert enc.encode(True, 3) == b"#t\r\n"
    assert enc.encode(0.5, 3) == b",0.5\r\n"
    assert enc.encode(None, 2) == b"$-1\r\n"
    assert enc.encode(None, 3) == b"_\r\n"
    assert enc.encode([b"a", (1,)], 2) == b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n"
    assert enc.encode({b"k": b"v"}, 3) == b"%1\r\n$1\r\nk\r\n$1\r\nv\r\n"
    assert enc.encode({b"k": b"v"}, 2) == b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n"
    assert enc.encode(Push([b"message"]), 3) == b">1\r\n$7\r\nmessage\r\n"
    assert enc.encode(RespSet([1]), 3) == b"~1\r\n:1\r\n"
    assert enc.encode(frozenset([1]), 2) == b"*1\r\n:1\r\n"
    assert enc.encode(Verbatim("x", "mkd"), 3) == b"=5\r\nmkd:x\r\n"
    with pytest.raises(LocalProtocolError):
        enc.encode(object(), 3)


def test_command_encoder() -> None:
    assert enc.command(b"PUBLISH", "ch1", b"hi") == b"*3\r\n$7\r\nPUBLISH\r\n$3\r\nch1\r\n$2\r\nhi\r\n"
    assert enc.command("ping") == b"*1\r\n$4\r\nping\r\n"
    assert enc.command("HELLO", 3) == b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"
    assert enc.commands([("CONFIG", "GET", "save"), ("PING",)]) == (
        b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n*1\r\n$4\r\nPING\r\n"
    )
    for bad in [(), (True,), (1.5,), (None,)]:
        with pytest.raises(LocalProtocolError):
            enc.command(*bad)


# -- pub/sub frames (docs/resp.md#message-frames) ---------------------------------------------


def test_message_frames() -> None:
    assert pubsub.message_frame(b"ch1", b"hi", 2) == b"*3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$2\r\nhi\r\n"
    assert pubsub.message_frame(b"ch1", b"hi", 3) == b">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$2\r\nhi\r\n"
    assert pubsub.pmessage_frame(b"c*", b"ch1", b"hi", 3) == (
        b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$3\r\nch1\r\n$2\r\nhi\r\n"
    )
    assert pubsub.pmessage_frame(b"c*", b"ch1", b"", 2) == (
        b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$3\r\nch1\r\n$0\r\n\r\n"
    )
    assert pubsub.smessage_frame(b"s", b"m", 2) == b"*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nm\r\n"


def test_frames_equal_generic_encoding() -> None:
    for proto in (2, 3):
        assert pubsub.message_frame(b"a\r\n", b"\x00" * 300, proto) == enc.push(
            [enc.bulk(b"message"), enc.bulk(b"a\r\n"), enc.bulk(b"\x00" * 300)], proto
        )


def test_subscription_frames_redis_py_session() -> None:
    """The frames a redis-py 8.1.0 RESP3 session (subscribe, psubscribe, unsubscribe, punsubscribe)
    receives from redis-server 7.0.15, server side."""
    assert pubsub.subscription_frame(b"subscribe", b"ch1", 1, 3) == b">3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n"
    assert pubsub.subscription_frame(b"psubscribe", b"c*", 2, 3) == (
        b">3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:2\r\n"
    )
    assert pubsub.subscription_frame(b"unsubscribe", b"ch1", 1, 3) == (
        b">3\r\n$11\r\nunsubscribe\r\n$3\r\nch1\r\n:1\r\n"
    )
    assert pubsub.subscription_frame(b"punsubscribe", b"c*", 0, 3) == (
        b">3\r\n$12\r\npunsubscribe\r\n$2\r\nc*\r\n:0\r\n"
    )


def test_subscription_frames_without_name() -> None:
    assert pubsub.subscription_frame(b"unsubscribe", None, 0, 2) == b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
    assert pubsub.subscription_frame(b"punsubscribe", None, 0, 2) == b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"
    assert pubsub.subscription_frame(b"sunsubscribe", None, 0, 3) == b">3\r\n$12\r\nsunsubscribe\r\n_\r\n:0\r\n"
    assert pubsub.subscription_frame(b"ssubscribe", b"s", 1, 2) == b"*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n"


def test_pong_frames() -> None:
    assert pubsub.pong_frame(b"", 2) == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"  # observed
    assert pubsub.pong_frame(None, 2) == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    assert pubsub.pong_frame(b"redis-py-health-check", 2) == (
        b"*2\r\n$4\r\npong\r\n$21\r\nredis-py-health-check\r\n"
    )
    assert pubsub.pong_frame(None, 3) == b"+PONG\r\n"
    assert pubsub.pong_frame(b"hi", 3) == b"$2\r\nhi\r\n"
