"""The mesh certificate authority: SPIFFE certificates for the sidecars (I/O at the edge).

:class:`MeshCA` is Dockyard's own CA (ECDSA P-256), kept in ``<data_dir>/mesh-ca/``: ``ca.pem``
(its self-signed certificate) and ``ca-key.pem`` (its key, mode 0600), made at the first start
and loaded afterwards. Its trust bundle is ``ca.pem`` plus every ``trust/*.pem`` (how the CA
itself is rotated: docs/mtls.md). It signs each meshed task's certificate: a fresh P-256 key,
one URI SAN, the task's SPIFFE id (:func:`spiffe_id`), ``serverAuth`` and ``clientAuth``,
valid for ``lifetime`` seconds.

:class:`Issuer` keeps one :class:`Credential` per node (task ARN) and issues a new one once the
held one is past half its lifetime (or its identity changed): the controller asks it for the
node's credential at each push and wakes at :meth:`Issuer.next_renewal`, so a sidecar's
certificate is replaced over SDS (``mesh.snapshot``) long before it expires. Nothing here is
written into a task: the key leaves the process only inside an SDS ``Secret`` on the
sidecar's own ADS stream.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CA_ARN_NAME", "Credential", "Issuer", "MeshCA", "ca_arn", "spiffe_id"]

CA_ARN_NAME = "dockyard-mesh"  # arn:aws:acm-pca:<region>:<account>:certificate-authority/dockyard-mesh
CA_YEARS = 10
BACKDATE = 5.0  # seconds a certificate is valid before it is made (clock steps between hosts)


def ca_arn(region: str, account: str) -> str:
    """The ARN that names Dockyard's mesh CA in Service Connect's ``tls.issuerCertificateAuthority
    .awsPcaAuthorityArn`` (an ACM Private CA ARN's form)."""
    return f"arn:aws:acm-pca:{region}:{account}:certificate-authority/{CA_ARN_NAME}"


def spiffe_id(trust_domain: str, namespace: str, service: str) -> str:
    """``spiffe://<trust domain>/ns/<namespace>/sa/<ECS service>`` (Istio's form)."""
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service}"


@dataclass(frozen=True)
class Credential:
    """A certificate chain and its key (PEM), for one identity, valid until ``not_after``
    (epoch seconds); renewed from ``renew_at`` on."""

    identity: str
    certificate: str
    key: str
    not_after: float
    renew_at: float
    serial: int


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _at(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


class MeshCA:
    """The CA's key and certificate, and the trust bundle the sidecars validate peers with."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate, bundle: str) -> None:
        self.key = key
        self.certificate = certificate
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        self.bundle = bundle

    @classmethod
    def load_or_create(cls, directory: Path, trust_domain: str, now: float | None = None) -> MeshCA:
        """The CA kept in ``directory``, made there first if it holds none."""
        directory.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = directory / "ca-key.pem", directory / "ca.pem"
        if not key_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            start = time.time() if now is None else now
            name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dockyard"),
                              x509.NameAttribute(NameOID.COMMON_NAME, f"Dockyard mesh CA {trust_domain}")])
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(_at(start - BACKDATE))
                    .not_valid_after(_at(start + CA_YEARS * 365 * 86400))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                 content_commitment=False, key_encipherment=False,
                                                 data_encipherment=False, key_agreement=False,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .add_extension(x509.SubjectAlternativeName(
                        [x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]), critical=False)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                   critical=False)
                    .sign(key, hashes.SHA256()))
            _write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path}: not an ECDSA key")
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        bundle = [certificate.public_bytes(serialization.Encoding.PEM).decode()]
        bundle += [p.read_text() for p in sorted((directory / "trust").glob("*.pem"))]
        return cls(loaded, certificate, "".join(bundle))

    def issue(self, identity: str, lifetime: float, now: float | None = None) -> Credential:
        """A new key and a certificate for ``identity`` (its URI SAN) valid ``lifetime`` seconds."""
        start = time.time() if now is None else now
        key = ec.generate_private_key(ec.SECP256R1())
        serial = x509.random_serial_number()
        not_after = start + lifetime
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dockyard")]))
                .issuer_name(self.certificate.subject).public_key(key.public_key()).serial_number(serial)
                .not_valid_before(_at(start - BACKDATE)).not_valid_after(_at(not_after))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=True,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]),
                               critical=True)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        chain = cert.public_bytes(serialization.Encoding.PEM).decode()
        return Credential(identity, chain, pem, not_after, start + lifetime / 2, serial)


class Issuer:
    """One credential per node, renewed from half its lifetime on (module docstring)."""

    def __init__(self, ca: MeshCA, lifetime: float, clock: Callable[[], float] = time.time) -> None:
        if lifetime <= 0:
            raise ValueError("the certificate lifetime must be positive")
        self.ca = ca
        self.lifetime = lifetime
        self.clock = clock
        self.held: dict[str, Credential] = {}
        self.issued = 0  # certificates issued (for tests and metrics)

    def credential(self, node: str, identity: str) -> Credential:
        held = self.held.get(node)
        if held is None or held.identity != identity or self.clock() >= held.renew_at:
            held = self.held[node] = self.ca.issue(identity, self.lifetime, self.clock())
            self.issued += 1
        return held

    def keep(self, nodes: Iterable[str]) -> None:
        """Forget the credentials of every node not in ``nodes``."""
        wanted = set(nodes)
        for node in set(self.held) - wanted:
            del self.held[node]

    def next_renewal(self) -> float | None:
        """When the first held credential is due (epoch seconds), None with none held."""
        return min((c.renew_at for c in self.held.values()), default=None)
