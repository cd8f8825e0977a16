"""Flags win over environment variables, which win over defaults; namespaces come from either.
The address policy comes from flags or environment too, and a malformed one stops start-up
with one clear line instead of starting with a policy other than the one written down.
"""

from __future__ import annotations

import ipaddress

import pytest

from shared_services.leader import lease_seconds
from shared_services.policy import AddressPolicy
from shared_services.settings import DEFAULT_NAMESPACE, Settings

POLICY_ENV = (
    "ALLOWED_CIDRS",
    "DENIED_CIDRS",
    "ALLOW_CLUSTER_NETWORKS",
    "STATIC_SOURCES",
    "STATIC_SOURCE_NAMESPACES",
    "SERVICE_CIDRS",
    "ALLOW_METADATA_SERVICES",
    "NAT64_PREFIXES",
)


@pytest.fixture
def no_policy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*POLICY_ENV, "LEASE_DURATION", "RENEW_DEADLINE", "RETRY_PERIOD"):
        monkeypatch.delenv(name, raising=False)


def test_lease_timings_from_flags_or_the_environment(
    no_policy_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = Settings.parse([])
    assert (defaults.lease_duration, defaults.renew_deadline, defaults.retry_period) == (
        15.0,
        10.0,
        2.0,
    )
    monkeypatch.setenv("LEASE_DURATION", "60")
    monkeypatch.setenv("RENEW_DEADLINE", "40")
    settings = Settings.parse(["--retry-period=5"])
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (
        60.0,
        40.0,
        5.0,
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--lease-duration=10.9", "--renew-deadline=10.5", "--retry-period=2"],
        ["--lease-duration=0.9", "--renew-deadline=0.5", "--retry-period=0.4"],
    ],
)
def test_accepted_timings_outlast_the_renew_deadline_as_the_lease_carries_them(
    no_policy_env: None, argv: list[str]
) -> None:
    """The Lease holds whole seconds; what standbys wait must still exceed the deadline."""
    settings = Settings.parse(argv)
    assert lease_seconds(settings.lease_duration) >= settings.lease_duration
    assert lease_seconds(settings.lease_duration) > settings.renew_deadline


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


def test_nameservers_are_read_once_and_normalized() -> None:
    settings = Settings.parse(["--dns-servers", " 127.0.0.1:53, [::1]:5353,127.0.0.1"])
    assert settings.dns_servers == ("127.0.0.1", "[::1]:5353")


def test_bad_flag_is_refused() -> None:
    with pytest.raises(SystemExit):
        Settings.parse(["--log-format=xml"])


def test_the_grace_of_a_gone_remote_cluster(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REMOTE_GONE_GRACE_SECONDS", raising=False)
    assert Settings.parse([]).remote_gone_grace == 300.0
    monkeypatch.setenv("REMOTE_GONE_GRACE_SECONDS", "30")
    assert Settings.parse([]).remote_gone_grace == 30.0
    assert Settings.parse(["--remote-gone-grace=0"]).remote_gone_grace == 0.0
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(SystemExit):
            Settings.parse([f"--remote-gone-grace={bad}"])
        assert "(or REMOTE_GONE_GRACE_SECONDS)" in capsys.readouterr().err


def test_system_namespaces_are_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALLOW_SYSTEM_NAMESPACES", raising=False)
    assert Settings().allow_system_namespaces is False
    assert Settings.parse([]).allow_system_namespaces is False
    assert Settings.parse(["--allow-system-namespaces"]).allow_system_namespaces is True
    monkeypatch.setenv("ALLOW_SYSTEM_NAMESPACES", "true")
    assert Settings.parse([]).allow_system_namespaces is True


def test_the_default_policy_refuses_the_cluster_and_allows_static_sources(
    no_policy_env: None,
) -> None:
    assert Settings.parse([]).address_policy == AddressPolicy()
    assert Settings().address_policy == AddressPolicy()
    default = Settings.parse([]).address_policy
    assert default.allow_cluster_networks is False
    assert (default.allowed, default.denied, default.static_sources) == ((), (), "all")


def test_policy_from_the_environment(no_policy_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_CIDRS", "198.51.100.0/24, 2001:db8:100::/48")
    monkeypatch.setenv("DENIED_CIDRS", "198.51.100.128/25")
    monkeypatch.setenv("ALLOW_CLUSTER_NETWORKS", "true")
    monkeypatch.setenv("STATIC_SOURCES", "listed")
    monkeypatch.setenv("STATIC_SOURCE_NAMESPACES", "ops, platform,")
    policy = Settings.parse([]).address_policy
    assert policy.allowed == (
        ipaddress.ip_network("198.51.100.0/24"),
        ipaddress.ip_network("2001:db8:100::/48"),
    )
    assert policy.denied == (ipaddress.ip_network("198.51.100.128/25"),)
    assert policy.allow_cluster_networks is True
    assert policy.static_sources == "listed"
    assert policy.static_source_namespaces == frozenset({"ops", "platform"})


def test_policy_flags_win(no_policy_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_CIDRS", "192.0.2.0/24")
    monkeypatch.setenv("STATIC_SOURCES", "none")
    monkeypatch.setenv("STATIC_SOURCE_NAMESPACES", "web")
    policy = Settings.parse(
        [
            "--allowed-cidrs=198.51.100.0/25,198.51.100.128/25",
            "--allowed-cidrs",
            "2001:db8::/32",
            "--static-sources=listed",
            "--static-source-namespace=ops",
            "--static-source-namespace",
            "platform",
            "--allow-cluster-networks",
        ]
    ).address_policy
    assert [str(n) for n in policy.allowed] == [
        "198.51.100.0/25",
        "198.51.100.128/25",
        "2001:db8::/32",
    ]
    assert policy.static_sources == "listed"
    assert policy.static_source_namespaces == frozenset({"ops", "platform"})
    assert policy.allow_cluster_networks is True


@pytest.mark.parametrize(
    ("argv", "env", "complaint"),
    [
        (
            ["--allowed-cidrs=10.1.2.3/8"],
            {},
            "--allowed-cidrs (or ALLOWED_CIDRS): 10.1.2.3/8 has host bits set; "
            "did you mean 10.0.0.0/8?",
        ),
        (
            [],
            {"DENIED_CIDRS": "192.0.2.0/24,banana"},
            "--denied-cidrs (or DENIED_CIDRS): banana is not a CIDR such as 198.51.100.0/24",
        ),
        (
            [],
            {"SERVICE_CIDRS": "10.96.0.1/16"},
            "--service-cidrs (or SERVICE_CIDRS): 10.96.0.1/16 has host bits set; "
            "did you mean 10.96.0.0/16?",
        ),
        (
            ["--static-sources=listed"],
            {},
            "--static-sources=listed needs at least one --static-source-namespace "
            "(or STATIC_SOURCE_NAMESPACES)",
        ),
        (
            [],
            {"STATIC_SOURCES": "listed", "STATIC_SOURCE_NAMESPACES": " , "},
            "--static-sources=listed needs at least one --static-source-namespace",
        ),
        (["--static-sources=some"], {}, "argument --static-sources: invalid choice: 'some'"),
        ([], {"STATIC_SOURCES": "some"}, "STATIC_SOURCES: invalid choice 'some'"),
        (
            ["--dns-servers", "dns.example.internal"],
            {},
            "argument --dns-servers: nameserver 'dns.example.internal': 'dns.example.internal' "
            "is not an IP address",
        ),
        ([], {"DNS_SERVERS": "127.0.0.1:99999"}, "(or DNS_SERVERS)"),
        (
            [],
            {"NAT64_PREFIXES": "64:ff9b:1:ab::/80"},
            "--nat64-prefixes (or NAT64_PREFIXES): 64:ff9b:1:ab::/80 cannot be a NAT64 prefix",
        ),
        (
            ["--nat64-prefixes=198.51.100.0/24"],
            {},
            "--nat64-prefixes (or NAT64_PREFIXES): 198.51.100.0/24 is not an IPv6 prefix",
        ),
        (
            [],
            {"RETRY_PERIOD": "0"},
            "argument --retry-period: '0' is not a positive number of seconds (or RETRY_PERIOD)",
        ),
        (
            [],
            {"LEASE_DURATION": "soon"},
            "argument --lease-duration: 'soon' is not a positive number of seconds "
            "(or LEASE_DURATION)",
        ),
        (
            ["--renew-deadline=nan"],
            {},
            "argument --renew-deadline: 'nan' is not a positive number of seconds",
        ),
        (
            ["--lease-duration=-15"],
            {},
            "argument --lease-duration: '-15' is not a positive number of seconds",
        ),
        (
            ["--renew-deadline=2.4"],
            {},
            "the renew deadline (2.4 s) must be longer than 1.2 times the retry period (2.0 s)",
        ),
        (
            ["--lease-duration=10"],
            {},
            "the lease duration (10.0 s) must be longer than the renew deadline (10.0 s)",
        ),
        (
            [],
            {"RENEW_DEADLINE": "2", "RETRY_PERIOD": "2"},
            "the renew deadline (2.0 s) must be longer than 1.2 times the retry period (2.0 s)",
        ),
    ],
)
def test_a_malformed_setting_stops_start_up_with_one_clear_line(
    no_policy_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    complaint: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        Settings.parse(argv)
    assert stopped.value.code == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "error:" in x]
    assert line.startswith("shared-services-operator: error: ")
    assert complaint in line


def test_help_shows_every_policy_flag_with_its_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        Settings.parse(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, variable in (
        ("--allowed-cidrs", "ALLOWED_CIDRS"),
        ("--denied-cidrs", "DENIED_CIDRS"),
        ("--allow-cluster-networks", "ALLOW_CLUSTER_NETWORKS"),
        ("--static-sources {all,none,listed}", "STATIC_SOURCES"),
        ("--static-source-namespace NS", "STATIC_SOURCE_NAMESPACES"),
        ("--service-cidrs CIDR[,CIDR...]", "SERVICE_CIDRS"),
        ("--allow-metadata-services", "ALLOW_METADATA_SERVICES"),
        ("--nat64-prefixes CIDR[,CIDR...]", "NAT64_PREFIXES"),
    ):
        assert flag in text
        assert f"env {variable}" in text


def test_the_service_range_from_flags_or_the_environment(
    no_policy_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Needed only before Kubernetes 1.33, where no ServiceCIDR says it.
    assert Settings.parse([]).address_policy.service_cidrs == ()
    monkeypatch.setenv("SERVICE_CIDRS", "10.96.0.0/16, 2001:db8:96::/112")
    assert [str(n) for n in Settings.parse([]).address_policy.service_cidrs] == [
        "10.96.0.0/16",
        "2001:db8:96::/112",
    ]
    flagged = Settings.parse(["--service-cidrs=10.100.0.0/16"]).address_policy
    assert [str(n) for n in flagged.service_cidrs] == ["10.100.0.0/16"]


def test_metadata_services_from_flags_or_the_environment(
    no_policy_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings.parse([]).address_policy.allow_metadata_services is False
    assert Settings.parse(["--allow-metadata-services"]).address_policy.allow_metadata_services
    monkeypatch.setenv("ALLOW_METADATA_SERVICES", "true")
    assert Settings.parse([]).address_policy.allow_metadata_services is True


def test_nat64_prefixes_from_flags_or_the_environment(
    no_policy_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings.parse([]).address_policy.nat64_prefixes == ()
    monkeypatch.setenv("NAT64_PREFIXES", "64:ff9b:1:ab::/96, 2001:db8:64::/48")
    policy = Settings.parse([]).address_policy
    assert [str(n) for n in policy.nat64_prefixes] == ["64:ff9b:1:ab::/96", "2001:db8:64::/48"]
    flagged = Settings.parse(["--nat64-prefixes=64:ff9b:1:cd::/64"]).address_policy
    assert [str(n) for n in flagged.nat64_prefixes] == ["64:ff9b:1:cd::/64"]


def test_the_remote_clusters_an_installation_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REMOTE_CLUSTER_SELECTOR", raising=False)
    assert Settings.parse([]).remote_cluster_selector == {}
    monkeypatch.setenv("REMOTE_CLUSTER_SELECTOR", "fleet=tkc-01, tier=gold")
    assert Settings.parse([]).remote_cluster_selector == {"fleet": "tkc-01", "tier": "gold"}
    flag = ["--remote-cluster-selector=fleet=tkc-02"]
    assert Settings.parse(flag).remote_cluster_selector == {"fleet": "tkc-02"}
    with pytest.raises(SystemExit):
        Settings.parse(["--remote-cluster-selector=fleet"])
