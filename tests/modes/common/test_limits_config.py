"""The connection and buffer limits' config keys: defaults, named ranges, Kafka's cross-check."""

from __future__ import annotations

import pytest

from broker.config import BrokerConfig, GiB, MiB
from broker.errors import ConfigError
from modes.pull.server import connection_limits as kafka_limits
from modes.push.server import connection_limits as resp_limits


def test_defaults_change_nothing_for_existing_setups_but_cap_the_totals():
    config = BrokerConfig()
    # Per-IP caps default to the listener-wide caps' defaults.
    assert config.kafka.max_connections_per_ip == config.kafka.max_connections == 10000
    assert config.resp.maxclients_per_ip == config.resp.maxclients == 10000
    assert config.resp.client_query_buffer_limit == 1 * GiB  # Redis's default
    assert config.resp.maxmemory_clients == 1 * GiB
    assert config.kafka.queued_max_request_bytes == 512 * MiB


@pytest.mark.parametrize(("raw", "named"), [
    ({"kafka": {"max_connections_per_ip": 0}}, "kafka.max_connections_per_ip"),
    ({"kafka": {"queued_max_request_bytes": 0}}, "kafka.queued_max_request_bytes"),
    ({"kafka": {"queued_max_request_bytes": 50 * MiB}}, "kafka.queued_max_request_bytes"),
    ({"resp": {"maxclients_per_ip": 0}}, "resp.maxclients_per_ip"),
    ({"resp": {"client_query_buffer_limit": MiB - 1}}, "resp.client_query_buffer_limit"),
    ({"resp": {"maxmemory_clients": 100}}, "resp.maxmemory_clients"),
    ({"resp": {"maxmemory_clients": True}}, "resp.maxmemory_clients"),
])
def test_bad_values_are_refused_naming_the_key(raw, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        BrokerConfig.from_dict(raw)


def test_no_limit_spellings_map_to_no_limit():
    config = BrokerConfig.from_dict({"kafka": {"queued_max_request_bytes": -1},
                                     "resp": {"maxmemory_clients": 0}})
    assert kafka_limits(config.kafka).total_buffer_bytes == 0
    assert resp_limits(config.resp).total_buffer_bytes == 0
    # Kafka's per-connection bound is the frame size check, not the listener's.
    assert kafka_limits(config.kafka).per_connection_buffer_bytes == 0
    assert resp_limits(config.resp).per_connection_buffer_bytes == 1 * GiB
