"""``GetImageSbom`` (Dockyard's own operation on the ECR target, IAM action ``ecr:GetImageSbom``):
what the last COMPLETE scan of an image catalogued (its OS and packages) with its findings, as
stored (``registry_image_sboms``), so ``dockyard scan show --format cyclonedx|spdx`` writes
an SBOM from the server's scan without scanning again.

Request: ``repositoryName``, ``imageId`` (``imageDigest`` and/or ``imageTag``), optional
``registryId``. Answer: ``registryId``, ``repositoryName``, ``imageId``, ``imageScanStatus``,
``os`` (``id``, ``version_id``, ``codename``, ``pretty_name``; absent when none was found),
``packages`` and ``findings`` (the scanner's own fields: ``registry.scan.model``).
``ScanNotFoundException`` when the image has no COMPLETE scan with a stored catalogue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockyard.aws.errors import InvalidParameterException
from dockyard.aws.protocol import Call
from registry.ecr import scans
from registry.ecr.errors import ScanNotFoundException
from registry.ecr.images import image_id_of, one_image, scan_status

if TYPE_CHECKING:
    from registry.ecr.api import Ecr

__all__ = ["OPERATIONS"]


async def get_image_sbom(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(params.get("imageId"), dict):
        raise InvalidParameterException("imageId must be an object with imageDigest and/or imageTag")
    name, image, image_id = one_image(ecr, call, params)
    scan = scans.get(ecr.store, name, image.digest)
    sbom = scans.sbom_of(ecr.store, name, image.digest) if scan is not None else None
    if scan is None or scan.status != "COMPLETE" or sbom is None:
        state = "never scanned" if scan is None else f"last scan {scan.status}"
        raise ScanNotFoundException(
            f"No stored SBOM for the image {image.digest} in the repository with name '{name}' ({state})"
        )
    out: dict[str, Any] = {
        "registryId": ecr.account,
        "repositoryName": name,
        "imageId": image_id_of(image, image_id),
        "imageScanStatus": scan_status(scan),
        "packages": sbom.packages,
        "findings": scan.findings,
    }
    if sbom.os is not None:
        out["os"] = sbom.os
    return out


OPERATIONS = {"GetImageSbom": (get_image_sbom, True)}
