"""Flags win over environment variables, which win over defaults; namespaces come from either."""

from __future__ import annotations

import pytest

from shared_services.settings import DEFAULT_NAMESPACE, Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPERATOR_NAMESPACE",
        "WATCH_NAMESPACES",
        "METRICS_PORT",
        "LOG_FORMAT",
        "LEASE_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.parse([])
    assert settings.namespaces == ()
    assert settings.lease_name == "shared-services-operator"
    assert settings.operator_namespace == DEFAULT_NAMESPACE
    assert (settings.metrics_port, settings.health_port, settings.log_format) == (
        9090,
        8080,
        "text",
    )


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPERATOR_NAMESPACE", "ops")
    monkeypatch.setenv("WATCH_NAMESPACES", "web, shop ,")
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("DNS_SERVERS", "127.0.0.1:5353")
    monkeypatch.setenv("LEASE_NAME", "shard-a-shared-services-operator")
    settings = Settings.parse([])
    assert settings.lease_name == "shard-a-shared-services-operator"
    assert settings.operator_namespace == "ops"
    assert settings.namespaces == ("web", "shop")
    assert settings.log_format == "json"
    assert settings.dns_servers == ("127.0.0.1:5353",)


def test_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCH_NAMESPACES", "web")
    monkeypatch.setenv("METRICS_PORT", "1234")
    settings = Settings.parse(["--namespace=a", "--namespace=b", "--metrics-port=0"])
    assert settings.namespaces == ("a", "b")
    assert settings.metrics_port == 0


def test_bad_flag_is_refused() -> None:
    with pytest.raises(SystemExit):
        Settings.parse(["--log-format=xml"])
