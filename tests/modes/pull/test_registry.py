"""The handler registry: every declared Kafka API has exactly one handler, serving its declaration's versions."""

from __future__ import annotations

import pytest

import modes.pull.api  # noqa: F401  (importing registers every handler)
from modes.pull import registry
from wire.errors import LocalProtocolError
from wire.kafka import messages
from wire.kafka.messages.groups import HEARTBEAT


def test_every_declared_api_has_one_handler_with_its_versions() -> None:
    assert set(registry.HANDLERS) == set(messages.APIS), "an API declared without a handler (or the reverse)"
    for key, handler in registry.HANDLERS.items():
        declared = messages.APIS[key]
        assert (handler.api_key, handler.name) == (declared.key, declared.name)
        assert (handler.min_version, handler.max_version) == (declared.min_version, declared.max_version)
        assert handler.request is declared.request and handler.response is declared.response


def test_advertised_is_the_registry_in_key_order() -> None:
    advertised = registry.advertised()
    assert [entry["api_key"] for entry in advertised] == sorted(messages.APIS)
    for entry in advertised:
        declared = messages.APIS[entry["api_key"]]
        assert (entry["min_version"], entry["max_version"]) == (declared.min_version, declared.max_version)


def test_a_second_handler_for_one_api_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "HANDLERS", {})

    async def first(ctx, request):
        return {}

    registry.api(HEARTBEAT)(first)
    with pytest.raises(LocalProtocolError, match="registered twice"):
        registry.api(HEARTBEAT)(first)
