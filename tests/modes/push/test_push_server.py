"""Push mode byte for byte: the exact replies Redis gives, and bad input handled per connection."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.support import RawClient, broker_process


@pytest.fixture(scope="module")
def broker(tmp_path_factory, push_driver):
    with broker_process(tmp_path_factory.mktemp("push")) as running:
        yield running


def test_unknown_command_keeps_connection(broker) -> None:
    with RawClient(broker.resp) as client:
        client.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        client.expect(b"-ERR unknown command 'SET', with args beginning with: 'k' 'v' \r\n")
        client.send(b"PING\r\n")
        client.expect(b"+PONG\r\n")


def test_wrong_arity_text(broker) -> None:
    with RawClient(broker.resp) as client:
        client.send(b"*2\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n")
        client.expect(b"-ERR wrong number of arguments for 'publish' command\r\n")
        client.send(b"CLIENT SETNAME\r\n")
        client.expect(b"-ERR wrong number of arguments for 'client|setname' command\r\n")
        client.send(b"CLIENT FROB\r\n")
        client.expect(b"-ERR unknown subcommand 'FROB'. Try CLIENT HELP.\r\n")


def test_subscribe_frames_and_counts_resp2(broker) -> None:
    with RawClient(broker.resp) as client:
        client.send(b"SUBSCRIBE ch1 ch1 ch2\r\n")
        client.expect(b"*3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n"
                      b"*3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n"
                      b"*3\r\n$9\r\nsubscribe\r\n$3\r\nch2\r\n:2\r\n")
        client.send(b"PING\r\n")
        client.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        client.send(b"PUBLISH ch1 x\r\n")
        client.expect(b"-ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n")
        client.send(b"UNSUBSCRIBE zzz\r\n")
        client.expect(b"*3\r\n$11\r\nunsubscribe\r\n$3\r\nzzz\r\n:2\r\n")
        client.send(b"UNSUBSCRIBE\r\n")
        client.expect(b"*3\r\n$11\r\nunsubscribe\r\n$3\r\nch1\r\n:1\r\n"
                      b"*3\r\n$11\r\nunsubscribe\r\n$3\r\nch2\r\n:0\r\n")
        client.send(b"UNSUBSCRIBE\r\n")
        client.expect(b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n")
        client.send(b"PUNSUBSCRIBE\r\n")
        client.expect(b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n")


def test_resp3_subscribed_client_may_run_any_command_and_gets_push_frames(broker) -> None:
    with RawClient(broker.resp) as sub, RawClient(broker.resp) as pub:
        sub.send(b"HELLO 3\r\n")
        assert sub.read_exactly(4) == b"%7\r\n"
        sub.read_exactly(len(b"$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"))
        sub.buffer = b""
        # Drain the rest of the HELLO map (id varies), then synchronise with a PING.
        sub.send(b"PING\r\n")
        while b"+PONG\r\n" not in sub.buffer:
            sub.buffer += sub.sock.recv(4096)
        sub.buffer = b""
        sub.send(b"SUBSCRIBE r3\r\n")
        sub.expect(b">3\r\n$9\r\nsubscribe\r\n$2\r\nr3\r\n:1\r\n")
        sub.send(b"PING\r\n")
        sub.expect(b"+PONG\r\n")
        pub.send(b"PUBLISH r3 hello\r\n")
        pub.expect(b":1\r\n")
        sub.expect(b">3\r\n$7\r\nmessage\r\n$2\r\nr3\r\n$5\r\nhello\r\n")
        sub.send(b"UNSUBSCRIBE\r\n")
        sub.expect(b">3\r\n$11\r\nunsubscribe\r\n$2\r\nr3\r\n:0\r\n")


def test_pattern_delivery_order_and_count(broker) -> None:
    with RawClient(broker.resp) as sub, RawClient(broker.resp) as pub:
        sub.send(b"SUBSCRIBE ord1\r\nPSUBSCRIBE o*\r\n")
        sub.expect(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nord1\r\n:1\r\n*3\r\n$10\r\npsubscribe\r\n$2\r\no*\r\n:2\r\n")
        pub.send(b"PUBLISH ord1 m1\r\n")
        pub.expect(b":2\r\n")
        sub.expect(b"*3\r\n$7\r\nmessage\r\n$4\r\nord1\r\n$2\r\nm1\r\n"
                   b"*4\r\n$8\r\npmessage\r\n$2\r\no*\r\n$4\r\nord1\r\n$2\r\nm1\r\n")


def test_empty_channel_is_not_matched_by_star(broker) -> None:
    with RawClient(broker.resp) as sub, RawClient(broker.resp) as pub:
        sub.send(b"PSUBSCRIBE *\r\n")
        sub.expect(b"*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n")
        pub.send(b'PUBLISH "" x\r\n')
        pub.expect(b":0\r\n")


def test_protocol_error_closes_only_that_connection(broker) -> None:
    with RawClient(broker.resp) as good, RawClient(broker.resp) as bad:
        good.send(b"SUBSCRIBE survivor\r\n")
        good.expect(b"*3\r\n$9\r\nsubscribe\r\n$8\r\nsurvivor\r\n:1\r\n")
        bad.send(b"PING\r\n*1\r\n$x\r\n")
        assert bad.read_until_closed() == b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"
        with RawClient(broker.resp) as pub:
            pub.send(b"PUBLISH survivor still-here\r\n")
            pub.expect(b":1\r\n")
        good.expect(b"*3\r\n$7\r\nmessage\r\n$8\r\nsurvivor\r\n$10\r\nstill-here\r\n")


@pytest.mark.parametrize(
    ("garbage", "reply"),
    [
        (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'\r\n"),
        (b'PING "unterminated\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
        (b"*1\r\n$999999999999\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    ],
)
def test_malformed_input_gets_redis_error_and_close(broker, garbage: bytes, reply: bytes) -> None:
    with RawClient(broker.resp) as client:
        client.send(garbage)
        assert client.read_until_closed() == reply


def test_oversized_inline_request_is_refused_before_buffering(broker) -> None:
    with RawClient(broker.resp) as client:
        client.send(b"A" * (70 * 1024))
        assert client.read_until_closed() == b"-ERR Protocol error: too big inline request\r\n"


def test_quit_and_reset(broker) -> None:
    with RawClient(broker.resp) as client:
        client.send(b"SUBSCRIBE a\r\nRESET\r\nPUBLISH a x\r\nQUIT\r\n")
        assert client.read_until_closed() == (
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n+RESET\r\n:0\r\n+OK\r\n"
        )


def test_select_and_config_probe_like_redis_benchmark(broker) -> None:
    with RawClient(broker.resp) as client:
        client.send(b"SELECT 0\r\nSELECT 3\r\nSELECT 16\r\n")
        client.expect(b"+OK\r\n+OK\r\n-ERR DB index is out of range\r\n")
        client.send(b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$10\r\nappendonly\r\n")
        client.expect(b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n")


def _subscriber_that_never_reads(address) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window makes the broker's outbox fill sooner than the kernel buffers.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(address)
    return sock


def _publish_until(pub: RawClient, channel: bytes, payload: bytes, stop, limit: int = 20000) -> list[int]:
    """Publish (pipelined, 50 at a time) until stop(receivers) is true; returns receiver counts."""
    counts: list[int] = []
    command = b"PUBLISH %s %s\r\n" % (channel, payload)
    while len(counts) < limit:
        pub.send(command * 50)
        for _ in range(50):
            line = b""
            while not line.endswith(b"\r\n"):
                line += pub.read_exactly(1)
            counts.append(int(line[1:-2]))
        if stop(counts):
            return counts
    raise AssertionError(f"stop condition never met after {limit} publishes")


def test_slow_subscriber_is_cut_at_hard_limit_others_unaffected(tmp_path) -> None:
    config = tmp_path / "limits.toml"
    config.write_text("[resp]\npubsub_hard_limit = 262144\npubsub_soft_limit = 0\npubsub_soft_seconds = 0\n")
    payload = b"x" * 10_000
    frame = b"*3\r\n$7\r\nmessage\r\n$8\r\nfirehose\r\n$10000\r\n" + payload + b"\r\n"
    done = b"*3\r\n$7\r\nmessage\r\n$8\r\nfirehose\r\n$4\r\ndone\r\n"
    with broker_process(tmp_path, "--config", str(config)) as broker:
        slow = _subscriber_that_never_reads(broker.resp)
        slow.sendall(b"SUBSCRIBE firehose\r\n")
        with RawClient(broker.resp, timeout=30) as fast, RawClient(broker.resp) as pub:
            # Room for bursts: on a busy machine this reader thread may lag for a while, and it
            # must not be the one that reaches the hard limit.
            fast.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            fast.send(b"SUBSCRIBE firehose\r\n")
            fast.expect(b"*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n")
            received = bytearray()

            def read_fast() -> None:
                while not received.endswith(done):
                    chunk = fast.sock.recv(1 << 20)
                    if not chunk:
                        return
                    received.extend(chunk)

            reader = threading.Thread(target=read_fast, daemon=True)
            reader.start()
            # Flood until the slow subscriber has been cut (receivers drop from 2 to 1).
            counts = _publish_until(pub, b"firehose", payload, lambda c: c[-1] == 1 and 2 in c)
            pub.send(b"PUBLISH firehose done\r\n")
            pub.expect(b":1\r\n")
            reader.join(30)
            # The fast subscriber got every message, in order, and nothing else.
            assert bytes(received) == frame * len(counts) + done
            pub.send(b"INFO dualmq\r\n")
            info = b""
            while b"protocol_errors" not in info:
                info += pub.sock.recv(65536)
            assert b"subscribers_disconnected_hard_limit:1\r\n" in info
        # The slow subscriber's stream just ends (after what the kernel had buffered).
        while slow.recv(65536):
            pass
        slow.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lines = [l for l in broker.log_lines() if l.get("event") == "subscriber_disconnected"]
            if lines:
                break
            time.sleep(0.05)
        assert lines and lines[0]["limit"] == "hard" and lines[0]["limit_bytes"] == 262144
        assert lines[0]["pending_bytes"] >= 262144


def test_slow_subscriber_is_cut_after_soft_limit_seconds(tmp_path) -> None:
    config = tmp_path / "limits.toml"
    config.write_text("[resp]\npubsub_hard_limit = 0\npubsub_soft_limit = 131072\npubsub_soft_seconds = 1\n")
    with broker_process(tmp_path, "--config", str(config)) as broker:
        slow = _subscriber_that_never_reads(broker.resp)
        slow.sendall(b"SUBSCRIBE soft\r\n")
        with RawClient(broker.resp) as pub:
            payload = b"y" * 10_000
            # Fill well past the soft limit, then stop publishing: only the timer can cut it.
            counts = _publish_until(pub, b"soft", payload, lambda c: c.count(1) >= 1000)
            assert counts[-1] == 1
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                pub.send(b"PUBSUB NUMSUB soft\r\n")
                reply = pub.read_exactly(len(b"*2\r\n$4\r\nsoft\r\n:0\r\n"))
                if reply.endswith(b":0\r\n"):
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("soft-limit subscriber was never cut")
        slow.close()
        lines = [l for l in broker.log_lines() if l.get("event") == "subscriber_disconnected"]
        assert lines and lines[0]["limit"] == "soft"


def test_maxclients_rejects_with_redis_error(tmp_path) -> None:
    config = tmp_path / "max.toml"
    config.write_text("[resp]\nmaxclients = 2\n")
    with broker_process(tmp_path, "--config", str(config)) as broker:
        with RawClient(broker.resp) as a, RawClient(broker.resp) as b:
            a.send(b"PING\r\n")
            a.expect(b"+PONG\r\n")
            b.send(b"PING\r\n")
            b.expect(b"+PONG\r\n")
            with RawClient(broker.resp) as third:
                assert third.read_until_closed() == b"-ERR max number of clients reached\r\n"
            a.send(b"PING\r\n")
            a.expect(b"+PONG\r\n")


def _cmd(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def _message(channel: bytes, payload: bytes, prefix: bytes = b"*") -> bytes:
    return prefix + b"3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(channel), channel, len(payload), payload)


def test_pipelined_publish_fast_path_is_byte_exact(broker) -> None:
    """Pipelined PUBLISHes (replies and deliveries held back to the end of the batch)
    interleaved with other commands: replies, counts and delivery order as one by one."""
    with RawClient(broker.resp) as one, RawClient(broker.resp) as two, RawClient(broker.resp) as pub:
        one.send(b"SUBSCRIBE fp1\r\n")
        one.expect(b"*3\r\n$9\r\nsubscribe\r\n$3\r\nfp1\r\n:1\r\n")
        two.send(b"SUBSCRIBE fp1 fp2\r\n")
        two.expect(b"*3\r\n$9\r\nsubscribe\r\n$3\r\nfp1\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$3\r\nfp2\r\n:2\r\n")
        batch = (_cmd(b"PUBLISH", b"fp1", b"a") + _cmd(b"publish", b"fp2", b"b")
                 + _cmd(b"PUBLISH", b"fp1", b"c") + _cmd(b"PUBSUB", b"NUMSUB", b"fp1")
                 + _cmd(b"Publish", b"fp1", b"d") + _cmd(b"PUBLISH", b"none", b"e")
                 + _cmd(b"PUBLISH", b"fp1") + _cmd(b"pUbLiSh", b"fp2", b"f"))
        pub.send(batch)
        pub.expect(b":2\r\n:1\r\n:2\r\n*2\r\n$3\r\nfp1\r\n:2\r\n:2\r\n:0\r\n"
                   b"-ERR wrong number of arguments for 'publish' command\r\n:1\r\n")
        one.expect(_message(b"fp1", b"a") + _message(b"fp1", b"c") + _message(b"fp1", b"d"))
        two.expect(_message(b"fp1", b"a") + _message(b"fp2", b"b") + _message(b"fp1", b"c")
                   + _message(b"fp1", b"d") + _message(b"fp2", b"f"))


def test_resp3_subscriber_publishing_to_itself_gets_message_before_reply(broker) -> None:
    with RawClient(broker.resp) as client:
        client.send(b"HELLO 3\r\nPING\r\n")
        while b"+PONG\r\n" not in client.buffer:
            client.buffer += client.sock.recv(4096)
        client.buffer = b""
        client.send(b"SUBSCRIBE self3\r\n")
        client.expect(b">3\r\n$9\r\nsubscribe\r\n$5\r\nself3\r\n:1\r\n")
        client.send(_cmd(b"PUBLISH", b"self3", b"x") * 2)
        client.expect((_message(b"self3", b"x", b">") + b":1\r\n") * 2)


def test_subscribing_mid_batch_changes_what_the_rest_of_the_batch_may_run(broker) -> None:
    """One write, one batch: each command is checked against the state the previous ones left
    (held PUBLISH replies come out before the subscribe frame; once subscribed, RESP2 refuses
    PUBLISH and answers PING as a push; after UNSUBSCRIBE, PUBLISH runs again)."""
    with RawClient(broker.resp) as client:
        client.send(_cmd(b"PUBLISH", b"mid", b"a") + _cmd(b"SUBSCRIBE", b"mid") + _cmd(b"PUBLISH", b"mid", b"b")
                    + _cmd(b"PING") + _cmd(b"UNSUBSCRIBE") + _cmd(b"PUBLISH", b"mid", b"c"))
        client.expect(b":0\r\n"
                      b"*3\r\n$9\r\nsubscribe\r\n$3\r\nmid\r\n:1\r\n"
                      b"-ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET"
                      b" are allowed in this context\r\n"
                      b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
                      b"*3\r\n$11\r\nunsubscribe\r\n$3\r\nmid\r\n:0\r\n"
                      b":0\r\n")


def test_runs_of_pipelined_publishes_keep_every_reply_and_order(broker) -> None:
    """Reads of nothing but PUBLISHes to one channel run as one fan-out: the replies, the
    frames and their order are those of one by one, also when a SUBSCRIBE of another client
    comes between two runs, and when CLIENT REPLY SKIP sits inside one."""
    with RawClient(broker.resp) as sub, RawClient(broker.resp) as late, RawClient(broker.resp) as pub:
        sub.send(b"SUBSCRIBE run\r\n")
        sub.expect(b"*3\r\n$9\r\nsubscribe\r\n$3\r\nrun\r\n:1\r\n")
        pub.send(_cmd(b"PUBLISH", b"run", b"a") * 16)
        pub.expect(b":1\r\n" * 16)
        late.send(b"SUBSCRIBE run\r\n")
        late.expect(b"*3\r\n$9\r\nsubscribe\r\n$3\r\nrun\r\n:1\r\n")
        pub.send(_cmd(b"PUBLISH", b"run", b"b") + _cmd(b"PUBLISH", b"run", b"c") * 15)
        pub.expect(b":2\r\n" * 16)
        pub.send(_cmd(b"PUBLISH", b"run", b"d") + _cmd(b"CLIENT", b"REPLY", b"SKIP")
                 + _cmd(b"PUBLISH", b"run", b"e") * 2 + _cmd(b"PING"))
        pub.expect(b":2\r\n:2\r\n+PONG\r\n")
        sub.expect(_message(b"run", b"a") * 16 + _message(b"run", b"b") + _message(b"run", b"c") * 15
                   + _message(b"run", b"d") + _message(b"run", b"e") * 2)
        late.expect(_message(b"run", b"b") + _message(b"run", b"c") * 15 + _message(b"run", b"d")
                    + _message(b"run", b"e") * 2)
