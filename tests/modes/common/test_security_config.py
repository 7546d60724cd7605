"""The security config keys ([kafka] security ones, [tls], [resp] tls): defaults and refusals.

Every refusal names the key, as every other config error does; a certificate that cannot be
loaded is refused when the listener starts (``server_context``), naming ``[tls]``.
"""

from __future__ import annotations

import pytest

from broker.config import BrokerConfig, TlsConfig
from broker.errors import ConfigError
from modes.common.tls import server_context


def test_defaults_are_open_loopback_plaintext():
    config = BrokerConfig()
    assert config.kafka.security_protocol == "PLAINTEXT" and not config.kafka.authorizer
    assert config.kafka.sasl_mechanisms == ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    assert config.kafka.users == () and not config.resp.tls and not config.tls.configured


@pytest.mark.parametrize(("raw", "named"), [
    ({"kafka": {"security_protocol": "TLS"}}, "kafka.security_protocol"),
    ({"kafka": {"sasl_mechanisms": ["GSSAPI"]}}, "kafka.sasl_mechanisms"),
    ({"kafka": {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanisms": []}}, "kafka.sasl_mechanisms"),
    ({"kafka": {"super_users": ["admin"]}}, "kafka.super_users"),
    ({"kafka": {"authorizer": "yes"}}, "kafka.authorizer"),
    ({"kafka": {"users": [{"name": "a", "pasword": "typo"}]}}, r"kafka.users\[0\]"),
    ({"kafka": {"security_protocol": "SSL"}}, "tls.cert_file"),
    ({"resp": {"tls": True}}, "tls.cert_file"),
    ({"tls": {"cert_file": "c.pem"}}, "tls.cert_file and tls.key_file"),
    ({"tls": {"cert_file": "c", "key_file": "k", "client_auth": "required"}}, "tls.ca_file"),
    ({"tls": {"client_auth": "maybe"}}, "tls.client_auth"),
])
def test_bad_values_are_refused_naming_the_key(raw, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        BrokerConfig.from_dict(raw)


def test_unreadable_certificate_is_refused_at_start(tmp_path):
    missing = TlsConfig(cert_file=str(tmp_path / "none.crt"), key_file=str(tmp_path / "none.key"))
    with pytest.raises(ConfigError, match=r"\[tls\] cannot load"):
        server_context(missing)
