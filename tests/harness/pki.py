"""Throwaway certificates and keys for one local cluster.

A cluster needs a CA that signs the API server's serving certificate (so clients verify TLS
as they would in production, rather than turning verification off), and a key pair that signs
ServiceAccount tokens (so TokenRequest works and tests can act as a ServiceAccount). Elliptic
curve keys keep generation to milliseconds, which matters when every test session makes them.

The CA's key is kept beside its certificate, so that other servers of the cluster on loopback
(the supervisor's sign-in service) get a certificate from the same CA: a client that trusts
the cluster's kubeconfig trusts them too, as it trusts a Supervisor's /wcp/login.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class Pki:
    """Paths of the files the control plane reads, and the CA in PEM for kubeconfigs."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    service_account_pub: Path
    ca_pem: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_pki(directory: Path, *, cluster_name: str) -> Pki:
    """Create a CA, a serving certificate for loopback, and a ServiceAccount signing key."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)

    ca_key = _key()
    ca_name = _name(f"{cluster_name}-ca")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    serving_key = _key()
    serving = _serving_certificate(
        serving_key,
        common_name=f"{cluster_name}-apiserver",
        dns_names=("localhost", "kubernetes", "kubernetes.default.svc"),
        ca=ca,
        ca_key=ca_key,
    )

    sa_key = _key()
    pki = Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        service_account_key=directory / "sa.key",
        service_account_pub=directory / "sa.pub",
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
    )
    pki.ca_cert.write_bytes(pki.ca_pem)
    pki.ca_key.write_bytes(_key_pem(ca_key))
    pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    pki.serving_key.write_bytes(_key_pem(serving_key))
    pki.service_account_key.write_bytes(_key_pem(sa_key))
    pki.service_account_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for secret in (pki.ca_key, pki.serving_key, pki.service_account_key):
        secret.chmod(0o600)
    return pki


def issue_serving_certificate(pki: Pki, *, common_name: str, cert: Path, key: Path) -> None:
    """Sign a serving certificate for loopback with the cluster's CA; write it and its key.

    For another server of the cluster (the supervisor's sign-in service): its clients need
    no CA but the one already in the cluster's kubeconfig.
    """
    ca = x509.load_pem_x509_certificate(pki.ca_pem)
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        msg = f"{pki.ca_key}: not the elliptic curve key that write_pki makes"
        raise TypeError(msg)
    serving_key = _key()
    serving = _serving_certificate(
        serving_key, common_name=common_name, dns_names=("localhost",), ca=ca, ca_key=ca_key
    )
    cert.parent.mkdir(parents=True, exist_ok=True)
    cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(_key_pem(serving_key))
    key.chmod(0o600)


def _serving_certificate(
    key: ec.EllipticCurvePrivateKey,
    *,
    common_name: str,
    dns_names: tuple[str, ...],
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    """A TLS server certificate for loopback (both families) and ``dns_names``, from ``ca``."""
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    alt_names: list[x509.GeneralName] = [
        *(x509.DNSName(name) for name in dns_names),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
