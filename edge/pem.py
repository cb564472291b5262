"""Parsing and checking of imported certificates (``cryptography``): pure functions.

:func:`inspect` takes the certificate, private key and chain PEMs as ACM's ImportCertificate
receives them and returns ACM's description fields, or raises ``ValidationException`` with
ACM's kind of message: not a PEM certificate, more than one certificate, a key that is not
PEM or is encrypted, a key that does not match the certificate, a certificate not valid yet
or expired.
"""

from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from dockyard.aws.errors import ValidationException

__all__ = ["inspect", "self_signed"]


def _key_algorithm(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA_{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "EC_prime256v1", "secp384r1": "EC_secp384r1", "secp521r1": "EC_secp521r1"}.get(
            key.curve.name, key.curve.name
        )
    raise ValidationException("The certificate's key algorithm is not supported (RSA, ECDSA).")


def inspect(
    cert_pem: bytes, key_pem: bytes, chain_pem: bytes = b"", now: datetime.datetime | None = None
) -> dict[str, Any]:
    now = now or datetime.datetime.now(datetime.UTC)
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise ValidationException("Could not validate the certificate with the certificate chain.") from None
    if len(certs) != 1:
        raise ValidationException(
            "The certificate field contains more than one certificate. "
            "You can specify only one certificate in this field."
        )
    cert = certs[0]
    if chain_pem:
        try:
            x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            raise ValidationException(
                "The certificate chain is not a PEM-encoded chain of certificates."
            ) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ValidationException("The private key is encrypted; import an unencrypted key.") from None
    except ValueError:
        raise ValidationException("The private key is not supported.") from None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, pub) != cert.public_key().public_bytes(enc, pub):
        raise ValidationException("The private key does not match the public key in the certificate.")
    if cert.not_valid_after_utc <= now:
        raise ValidationException("The certificate has expired.")
    if cert.not_valid_before_utc > now:
        raise ValidationException("The certificate is not valid yet.")
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    except x509.ExtensionNotFound:
        sans = []
    domain = str(cn[0].value) if cn else (sans[0] if sans else "")
    algo = cert.signature_hash_algorithm
    return {
        "DomainName": domain,
        "SubjectAlternativeNames": sans or [domain],
        "Serial": ":".join(f"{b:02x}" for b in cert.serial_number.to_bytes(20, "big").lstrip(b"\0")),
        "Subject": cert.subject.rfc4514_string(),
        "Issuer": cert.issuer.rfc4514_string(),
        "NotBefore": cert.not_valid_before_utc.timestamp(),
        "NotAfter": cert.not_valid_after_utc.timestamp(),
        "KeyAlgorithm": _key_algorithm(cert.public_key()),
        "SignatureAlgorithm": f"{algo.name.upper()}WITH{_key_algorithm(cert.public_key()).split('_')[0]}"
        if algo
        else "UNKNOWN",
    }


def self_signed(names: list[str], days: int = 365) -> tuple[bytes, bytes]:
    """A self-signed ECDSA P-256 certificate for ``names`` (DNS names or IPs) and its key."""
    import ipaddress

    from cryptography.hazmat.primitives import hashes

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alts: list[x509.GeneralName] = []
    for n in names:
        try:
            alts.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alts.append(x509.DNSName(n))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alts), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
