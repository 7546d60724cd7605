"""One warning at start for a listener other machines can reach without authentication.

Both front-ends build it with ``broker.security.exposure``; neither refuses to start (that is
the operator's call, as in Redis and Kafka). Only the warning's function is called here: a
test never listens beyond the loopback interface.
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from broker.config import BrokerConfig, RespConfig
from modes.pull.server import _warn_if_exposed as warn_kafka
from modes.push.server import PushServer
from modes.push.server import _warn_if_exposed as warn_push


@pytest.mark.parametrize(("settings", "expected"), [
    ({}, "protected mode refuses"),
    ({"protected_mode": False}, "protected mode is off"),
    ({"requirepass": "pw"}, None),
])
def test_an_exposed_resp_listener_is_warned_about(settings: dict, expected: str | None) -> None:
    server = PushServer(config=RespConfig(**settings), pubsub=None, info=None, address="0.0.0.0:6379")
    with capture_logs() as logs:
        warn_push(server, "0.0.0.0")
        warn_push(server, "127.0.0.1")
    warnings = [entry for entry in logs if entry["event"] == "listener_exposed"]
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and expected in warnings[0]["warning"]
        assert "pw" not in str(warnings[0])


@pytest.mark.parametrize(("kafka", "tls", "expected"), [
    ({}, {}, "security_protocol = PLAINTEXT"),
    ({"security_protocol": "SASL_PLAINTEXT"}, {}, None),
])
def test_an_exposed_kafka_listener_is_warned_about_too(kafka: dict, tls: dict, expected: str | None) -> None:
    config = BrokerConfig.from_dict({"kafka": kafka, "tls": tls})
    with capture_logs() as logs:
        warn_kafka(config, "0.0.0.0:9092", "0.0.0.0")
        warn_kafka(config, "127.0.0.1:9092", "127.0.0.1")
    warnings = [entry for entry in logs if entry["event"] == "listener_exposed"]
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and expected in warnings[0]["warning"] and warnings[0]["mode"] == "pull"


def test_an_exposed_http_listener_is_warned_about_for_it_has_no_authentication() -> None:
    from modes.http.server import _warn_if_exposed as warn_http
    with capture_logs() as logs:
        warn_http("0.0.0.0:9644")
        warn_http("127.0.0.1:9644")
        warn_http("[::1]:9644")
    warnings = [entry for entry in logs if entry["event"] == "listener_exposed"]
    assert [entry["address"] for entry in warnings] == ["0.0.0.0:9644"]
    assert warnings[0]["mode"] == "http" and "bind http.listen to 127.0.0.1" in warnings[0]["warning"]
