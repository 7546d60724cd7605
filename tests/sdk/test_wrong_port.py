"""A client pointed at the other protocol's port says so at once, instead of timing out.

dualmq listens twice (Kafka and RESP), and the two ports are easy to swap. A Kafka request sent
to a RESP server is never answered (the server waits for the end of an inline command), so the
SDK used to wait its whole connect timeout (10 s) and report a timeout; a RESP command sent to a
Kafka port is closed at once, reported as a bare "closed the connection". Now both raise
``ProtocolMismatch`` naming the mix-up, within about a second.
"""

from __future__ import annotations

import pytest
import trio

from dualmq.errors import ProtocolMismatch
from dualmq.pull import Admin, Consumer
from dualmq.push import Publisher, subscribe
from tests.sdk.push_servers import RedisServer
from tests.support import broker_process

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with broker_process(tmp_path_factory.mktemp("wrong-port")) as running:
        yield running


# Generous for a loaded machine; the old behaviour took the full 10 s connect timeout.
PROMPTLY_S = 5.0


async def test_kafka_clients_at_the_resp_port_are_told_it_is_resp(broker) -> None:
    for make in (lambda: Admin(broker.resp_address), lambda: Consumer(broker.resp_address)):
        started = trio.current_time()
        with pytest.raises(ProtocolMismatch, match="speaks RESP .*not Kafka.*--kafka"):
            async with make():
                pass
        assert trio.current_time() - started < PROMPTLY_S


async def test_resp_clients_at_the_kafka_port_are_told_it_is_not_resp(broker) -> None:
    started = trio.current_time()
    with pytest.raises(ProtocolMismatch, match="does not speak RESP.*Kafka port.*--resp"):
        async with Publisher(broker.kafka_address) as publisher:
            await publisher.publish("news", "hi")
    with pytest.raises(ProtocolMismatch, match="does not speak RESP"):
        async with subscribe(broker.kafka_address, "news", reconnect=True):
            pass  # reconnect=True must not retry a wrong address forever
    assert trio.current_time() - started < PROMPTLY_S


@pytest.mark.interop
async def test_a_kafka_client_at_a_real_redis_server_is_told_it_is_resp(tmp_path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        started = trio.current_time()
        with pytest.raises(ProtocolMismatch, match="speaks RESP"):
            async with Admin(server.address):
                pass
        assert trio.current_time() - started < PROMPTLY_S
    finally:
        server.close()
