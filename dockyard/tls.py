"""A self-signed certificate for trying TLS out (``dockyard up --tls-self-signed``).

:func:`ensure_self_signed` makes, on first start, a P-256 key and a certificate valid for one
year for ``localhost``, ``127.0.0.1``, ``::1`` and the configured host, and keeps them in the
data dir (``tls-self-signed.crt``, ``tls-self-signed.key``, the key mode 0600). Later starts
reuse them until the certificate has less than a day left or no longer names the host.
Clients trust it by pinning the certificate file (``curl --cacert``, docker's
``/etc/docker/certs.d/<host:port>/ca.crt``).
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dockyard.files import write_atomic

__all__ = ["CERT_FILE", "KEY_FILE", "ensure_self_signed", "make_self_signed"]

CERT_FILE = "tls-self-signed.crt"
KEY_FILE = "tls-self-signed.key"
VALID_DAYS = 365


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    if host and host not in ("localhost", "127.0.0.1", "::1", "0.0.0.0", "::"):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_self_signed(
    host: str, now: datetime.datetime | None = None
) -> tuple[bytes, bytes]:
    """``(certificate PEM, private key PEM)`` of a new self-signed server certificate."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host or "localhost"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dockyard self-signed")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _still_good(cert_path: Path, host: str, now: datetime.datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.not_valid_after_utc - now < datetime.timedelta(days=1):
        return False
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return all(name in sans for name in _names(host))


def ensure_self_signed(data_dir: str | Path, host: str) -> tuple[str, str]:
    """Paths ``(cert, key)`` of the data dir's self-signed pair, made first if needed."""
    cert_path, key_path = Path(data_dir) / CERT_FILE, Path(data_dir) / KEY_FILE
    now = datetime.datetime.now(datetime.UTC)
    if not (key_path.exists() and _still_good(cert_path, host, now)):
        cert, key = make_self_signed(host, now)
        write_atomic(key_path, key, 0o600)
        write_atomic(cert_path, cert, 0o644)
    return str(cert_path), str(key_path)
