"""ACM's API for imported certificates (AWS JSON 1.1, ``X-Amz-Target: CertificateManager.*``).

ImportCertificate (and re-import by ARN), ListCertificates, DescribeCertificate,
GetCertificate, DeleteCertificate (refused while an HTTPS listener uses it), and the tag
operations. Certificates are checked by :func:`edge.pem.inspect`; blobs arrive base64 as the
JSON protocol sends them.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable
from typing import Any

from dockyard.aws.errors import (
    ResourceInUseException,
    ResourceNotFoundException,
    TooManyTagsException,
    ValidationException,
)
from dockyard.aws.protocol import Call
from edge.data import Certificate, Data
from edge.errors import InvalidArnException
from edge.pem import inspect

__all__ = ["TARGET", "Acm"]

TARGET = "CertificateManager"
MAX_TAGS = 50


def _blob(params: dict[str, Any], key: str) -> bytes:
    value = params.get(key)
    if value is None:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationException(f"{key} is not base64-encoded.") from None


class Acm:
    def __init__(
        self,
        data: Data,
        *,
        region: str,
        account: str,
        in_use: Callable[[str], list[str]],
        changed: Callable[[], None],
    ) -> None:
        self.data = data
        self.prefix = f"arn:aws:acm:{region}:{account}:certificate/"
        self.in_use = in_use
        self.changed = changed

    def operations(self) -> dict[str, Callable[[Call, dict[str, Any]], Any]]:
        return {
            "ImportCertificate": self.import_certificate,
            "ListCertificates": self.list_certificates,
            "DescribeCertificate": self.describe_certificate,
            "GetCertificate": self.get_certificate,
            "DeleteCertificate": self.delete_certificate,
            "AddTagsToCertificate": self.add_tags,
            "RemoveTagsFromCertificate": self.remove_tags,
            "ListTagsForCertificate": self.list_tags,
        }

    def pem(self, arn: str) -> tuple[str, str] | None:
        """(chain, key) for an HTTPS listener (``edge.seams.Certificates``)."""
        cert = self.data.certificate(arn)
        if cert is None:
            return None
        return cert.certificate + ("\n" + cert.chain if cert.chain else ""), cert.private_key

    def _get(self, arn: str) -> Certificate:
        if not arn.startswith("arn:aws:acm:") or "/" not in arn:
            raise InvalidArnException(f"The ARN '{arn}' is not valid.")
        cert = self.data.certificate(arn)
        if cert is None:
            raise ResourceNotFoundException(f"Could not find certificate {arn}.")
        return cert

    async def import_certificate(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        cert_pem, key_pem, chain = (
            _blob(params, "Certificate"),
            _blob(params, "PrivateKey"),
            _blob(params, "CertificateChain"),
        )
        if not cert_pem or not key_pem:
            raise ValidationException("A certificate and a private key must be given.")
        info = inspect(cert_pem, key_pem, chain)
        arn = params.get("CertificateArn")
        tags = tuple((t["Key"], t.get("Value", "")) for t in params.get("Tags", []))
        if arn:  # re-import keeps the ARN and the tags (tags may not be given then)
            old = self._get(arn)
            if tags:
                raise ValidationException("Tags cannot be given when re-importing a certificate.")
            tags = old.tags
        else:
            arn = self.prefix + str(uuid.uuid4())
        if len(tags) > MAX_TAGS:
            raise TooManyTagsException(f"A certificate can have at most {MAX_TAGS} tags.")
        body = {
            "CertificateArn": arn,
            **info,
            "ImportedAt": time.time(),
            "Status": "ISSUED",
            "Type": "IMPORTED",
            "RenewalEligibility": "INELIGIBLE",
        }
        await self.data.put_certificate(
            Certificate(arn, body, cert_pem.decode(), chain.decode(), key_pem.decode(), tags)
        )
        self.changed()
        return {"CertificateArn": arn}

    def _described(self, cert: Certificate) -> dict[str, Any]:
        body = dict(cert.body)
        if body["NotAfter"] <= time.time():
            body["Status"] = "EXPIRED"
        body["InUseBy"] = self.in_use(cert.arn)
        return body

    async def list_certificates(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        statuses = set(params.get("CertificateStatuses") or [])
        out = []
        for cert in self.data.certificates():
            d = self._described(cert)
            if statuses and d["Status"] not in statuses:
                continue
            out.append(
                {
                    k: d[k]
                    for k in (
                        "CertificateArn",
                        "DomainName",
                        "SubjectAlternativeNames",
                        "Status",
                        "Type",
                        "KeyAlgorithm",
                        "NotBefore",
                        "NotAfter",
                        "ImportedAt",
                    )
                }
                | {"InUse": bool(d["InUseBy"])}
            )
        return {"CertificateSummaryList": out}

    async def describe_certificate(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {"Certificate": self._described(self._get(params["CertificateArn"]))}

    async def get_certificate(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        cert = self._get(params["CertificateArn"])
        out = {"Certificate": cert.certificate}
        if cert.chain:
            out["CertificateChain"] = cert.chain
        return out

    async def delete_certificate(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        cert = self._get(params["CertificateArn"])
        users = self.in_use(cert.arn)
        if users:
            raise ResourceInUseException(f"Certificate {cert.arn} is in use by {', '.join(users)}.")
        await self.data.delete_certificate(cert.arn)
        return {}

    async def add_tags(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        cert = self._get(params["CertificateArn"])
        tags = {**dict(cert.tags), **{t["Key"]: t.get("Value", "") for t in params["Tags"]}}
        if len(tags) > MAX_TAGS:
            raise TooManyTagsException(f"A certificate can have at most {MAX_TAGS} tags.")
        await self.data.put_certificate(_retag(cert, tuple(tags.items())))
        return {}

    async def remove_tags(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        cert = self._get(params["CertificateArn"])
        drop = {(t["Key"], t.get("Value")) for t in params["Tags"]}
        kept = tuple((k, v) for k, v in cert.tags if (k, v) not in drop and (k, None) not in drop)
        await self.data.put_certificate(_retag(cert, kept))
        return {}

    async def list_tags(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        cert = self._get(params["CertificateArn"])
        return {"Tags": [{"Key": k, "Value": v} for k, v in cert.tags]}


def _retag(cert: Certificate, tags: tuple[tuple[str, str], ...]) -> Certificate:
    return Certificate(cert.arn, cert.body, cert.certificate, cert.chain, cert.private_key, tags)
