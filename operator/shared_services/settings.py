"""How the operator is configured: flags first, then environment, then defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAMESPACE = "shared-services-system"
_POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _own_namespace() -> str:
    """OPERATOR_NAMESPACE, else the pod's own namespace, else the chart's default.

    The operator reads kubeconfig Secrets from this namespace and from no other.
    """
    explicit = os.environ.get("OPERATOR_NAMESPACE", "").strip()
    if explicit:
        return explicit
    if _POD_NAMESPACE_FILE.is_file():
        return _POD_NAMESPACE_FILE.read_text().strip()
    return DEFAULT_NAMESPACE


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Everything the operator's behaviour depends on besides the custom resources."""

    namespaces: tuple[str, ...] = ()  # empty: every namespace
    operator_namespace: str = DEFAULT_NAMESPACE
    metrics_port: int = 9090
    health_port: int = 8080
    log_format: str = "text"
    dns_servers: tuple[str, ...] = ()  # empty: the system's resolver configuration
    workers: int = 16
    resync_seconds: float = 600.0
    leader_elect: bool = False
    lease_name: str = "shared-services-operator"
    verbose: bool = False

    @classmethod
    def parse(cls, argv: Sequence[str] | None = None) -> Settings:
        """Build settings from the command line, falling back to the environment."""
        env = os.environ
        parser = argparse.ArgumentParser(
            prog="shared-services-operator",
            description="Keep selectorless Services pointed at shared services on other clusters.",
        )
        parser.add_argument(
            "--namespace",
            action="append",
            dest="namespaces",
            default=None,
            help="watch only this namespace (repeatable; env WATCH_NAMESPACES, comma-separated; "
            "default: all namespaces)",
        )
        parser.add_argument(
            "--operator-namespace",
            default=_own_namespace(),
            help="where the kubeconfig Secrets live (env OPERATOR_NAMESPACE; default: the pod's "
            f"own namespace, else {DEFAULT_NAMESPACE})",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=int(env.get("METRICS_PORT", "9090")),
            help="Prometheus metrics port, 0 to disable (env METRICS_PORT; default 9090)",
        )
        parser.add_argument(
            "--health-port",
            type=int,
            default=int(env.get("HEALTH_PORT", "8080")),
            help="probes port, serving /healthz and /readyz, 0 to disable (env HEALTH_PORT; "
            "default 8080)",
        )
        parser.add_argument(
            "--log-format",
            choices=["text", "json"],
            default=env.get("LOG_FORMAT", "text"),
            help="log format (env LOG_FORMAT; default text)",
        )
        parser.add_argument(
            "--dns-servers",
            default=env.get("DNS_SERVERS", ""),
            help="nameservers for hostname sources, e.g. 10.0.0.10 or 127.0.0.1:5353 "
            "(env DNS_SERVERS; default: /etc/resolv.conf)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=int(env.get("WORKERS", "16")),
            help="imports synced at once (env WORKERS; default 16)",
        )
        parser.add_argument(
            "--resync-seconds",
            type=float,
            default=float(env.get("RESYNC_SECONDS", "600")),
            help="safety resync period; changes never wait for it (default 600)",
        )
        parser.add_argument(
            "--leader-elect",
            action="store_true",
            default=env.get("LEADER_ELECT", "").lower() in {"1", "true", "yes"},
            help="elect a leader through a Lease in the operator namespace, so several replicas "
            "can run (env LEADER_ELECT; off by default: renewing the lease is a write)",
        )
        parser.add_argument(
            "--lease-name",
            default=env.get("LEASE_NAME", "shared-services-operator"),
            help="the Lease to elect a leader with; releases sharing a namespace need their "
            "own (env LEASE_NAME; the chart uses the release's full name)",
        )
        parser.add_argument("--verbose", action="store_true", help="log debug messages")
        args = parser.parse_args(argv)
        namespaces = tuple(args.namespaces or ()) or _split(env.get("WATCH_NAMESPACES", ""))
        return cls(
            namespaces=namespaces,
            operator_namespace=args.operator_namespace,
            metrics_port=args.metrics_port,
            health_port=args.health_port,
            log_format=args.log_format,
            dns_servers=_split(args.dns_servers),
            workers=max(1, args.workers),
            resync_seconds=args.resync_seconds,
            leader_elect=args.leader_elect,
            lease_name=args.lease_name,
            verbose=args.verbose,
        )
