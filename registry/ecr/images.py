"""ECR image operations over the registry's manifests and tags: list, describe, get,
delete, put, referrers, and scans (run by :mod:`registry.ecr.scans`)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from dockyard.aws import paging
from dockyard.aws.errors import InvalidParameterException
from dockyard.aws.protocol import Call
from registry.ecr import data, scans
from registry.ecr.errors import (
    ImageAlreadyExistsException,
    ImageDigestDoesNotMatchException,
    ImageNotFoundException,
    ImageTagAlreadyExistsException,
    LayersNotFoundException,
    ReferencedImagesNotFoundException,
    ScanNotFoundException,
)
from registry.manifest import MAX_MANIFEST, ManifestError, parse_manifest
from registry.metadata import BlobsMissing, TagImmutable
from registry.reference import is_tag, parse_digest

if TYPE_CHECKING:
    from registry.ecr.api import Ecr

__all__ = ["OPERATIONS", "image_id_of", "one_image", "resolve", "scan_status"]


def _id_text(image_id: dict[str, Any]) -> str:
    parts = [f"{k}:'{image_id[k]}'" for k in ("imageDigest", "imageTag") if image_id.get(k)]
    return "{" + ", ".join(parts) + "}"


def resolve(images: list[data.Image], image_id: dict[str, Any]) -> tuple[data.Image | None, str, str]:
    """The image an ``imageId`` names, or None with ECR's failure code and reason."""
    digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
    if not digest and not tag:
        return None, "MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null"
    if digest and parse_digest(digest) is None:
        return None, "InvalidImageDigest", "Invalid request parameters: image digest should satisfy the regex"
    if tag and not is_tag(tag):
        return None, "InvalidImageTag", "Invalid request parameters: image tag should satisfy the regex"
    for image in images:
        if digest and image.digest != digest:
            continue
        if tag and tag not in image.tags:
            if digest:
                return (
                    None,
                    "ImageTagDoesNotMatchDigest",
                    "Invalid request parameters: given tag does not match",
                )
            continue
        return image, "", ""
    return None, "ImageNotFound", "Requested image not found"


def _not_found(ecr: Ecr, name: str, image_id: dict[str, Any]) -> ImageNotFoundException:
    return ImageNotFoundException(
        f"The image with imageId {_id_text(image_id)} does not exist within the repository with name"
        f" '{name}' in the registry with id '{ecr.account}'"
    )


def _tag_status(params: dict[str, Any]) -> str:
    return (params.get("filter") or {}).get("tagStatus", "ANY")


def _filtered(images: list[data.Image], status: str) -> list[data.Image]:
    if status == "TAGGED":
        return [i for i in images if i.tags]
    if status == "UNTAGGED":
        return [i for i in images if not i.tags]
    return images


async def list_images(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    ids: list[dict[str, str]] = []
    for image in _filtered(data.image_rows(ecr.store, repo.name), _tag_status(params)):
        if image.tags:
            ids += [{"imageDigest": image.digest, "imageTag": t} for t in image.tags]
        else:
            ids.append({"imageDigest": image.digest})
    page, token = paging.page(ids, params, InvalidParameterException, default=100, maximum=1000)
    out: dict[str, Any] = {"imageIds": page}
    if token:
        out["nextToken"] = token
    return out


def _config_media_type(image: data.Image) -> str | None:
    try:
        doc = json.loads(image.body)
    except ValueError:
        return None
    config = doc.get("config") if isinstance(doc, dict) else None
    media = config.get("mediaType") if isinstance(config, dict) else None
    return doc.get("artifactType") or media if isinstance(doc, dict) else None


def detail(ecr: Ecr, name: str, image: data.Image) -> dict[str, Any]:
    """An ``ImageDetail``, with ``imageScanStatus`` once the image was scanned (and
    ``imageScanFindingsSummary`` once a scan is COMPLETE)."""
    out: dict[str, Any] = {
        "registryId": ecr.account,
        "repositoryName": name,
        "imageDigest": image.digest,
        "imageSizeInBytes": image.size,
        "imagePushedAt": image.pushed,
        "imageManifestMediaType": image.media_type,
        "imageStatus": "ACTIVE",
    }
    if image.tags:
        out["imageTags"] = list(image.tags)
    artifact = _config_media_type(image)
    if artifact:
        out["artifactMediaType"] = artifact
    if image.pulled is not None:
        out["lastRecordedPullTime"] = image.pulled
    if image.subject:
        out["subjectManifestDigest"] = image.subject
    scan = scans.get(ecr.store, name, image.digest)
    if scan is not None:
        out["imageScanStatus"] = scan_status(scan)
        if scan.status == "COMPLETE":
            out["imageScanFindingsSummary"] = _summary(scan)
    return out


_DESCRIPTIONS = {
    "COMPLETE": "The scan was completed successfully.",
    "IN_PROGRESS": "The scan is in progress.",
}


def scan_status(scan: scans.Scan) -> dict[str, str]:
    """ECR's ``imageScanStatus``: the status, and the reason as the description."""
    return {"status": scan.status, "description": scan.reason or _DESCRIPTIONS.get(scan.status, scan.status)}


def _summary(scan: scans.Scan) -> dict[str, Any]:
    out: dict[str, Any] = {"findingSeverityCounts": scan.counts}
    if scan.completed is not None:
        out["imageScanCompletedAt"] = scan.completed
    if scan.source_updated is not None:
        out["vulnerabilitySourceUpdatedAt"] = scan.source_updated
    return out


def ecr_finding(f: dict[str, Any]) -> dict[str, Any]:
    """An ``ImageScanFinding`` as ECR's basic scanning answers it, from a stored ``Finding``:
    ``attributes`` ``package_name``, ``package_version`` and, when known, ``fixed_version``,
    ``package_type``, ``aliases`` (comma-separated), ``CVSS3_SCORE``/``CVSS3_VECTOR`` (or
    ``CVSS4_*``)."""
    attrs = [
        {"key": "package_version", "value": f["installed_version"]},
        {"key": "package_name", "value": f["package"]},
        {"key": "package_type", "value": f["package_type"]},
    ]
    if f.get("fixed_version"):
        attrs.append({"key": "fixed_version", "value": f["fixed_version"]})
    if f.get("aliases"):
        attrs.append({"key": "aliases", "value": ",".join(f["aliases"])})
    if f.get("vector"):
        kind = "CVSS4" if str(f["vector"]).startswith("CVSS:4") else "CVSS3"
        attrs.append({"key": f"{kind}_VECTOR", "value": f["vector"]})
        if f.get("score") is not None:
            attrs.append({"key": f"{kind}_SCORE", "value": str(f["score"])})
    out: dict[str, Any] = {"name": f["id"], "severity": f["severity"], "attributes": attrs}
    if f.get("summary"):
        out["description"] = f["summary"]
    if f.get("link"):
        out["uri"] = f["link"]
    return out


async def describe_images(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    images = data.image_rows(ecr.store, repo.name)
    wanted = params.get("imageIds")
    if wanted:
        chosen: list[data.Image] = []
        for image_id in wanted:
            image, code, reason = resolve(images, image_id)
            if image is None:
                if code in ("InvalidImageDigest", "InvalidImageTag", "MissingDigestAndTag"):
                    raise InvalidParameterException(reason)
                raise _not_found(ecr, repo.name, image_id)
            if image not in chosen:
                chosen.append(image)
    else:
        chosen = _filtered(images, _tag_status(params))
    page, token = paging.page(chosen, params, InvalidParameterException, default=100, maximum=1000)
    out: dict[str, Any] = {"imageDetails": [detail(ecr, repo.name, i) for i in page]}
    if token:
        out["nextToken"] = token
    return out


def _accepted(image: data.Image, accepted: list[str] | None) -> bool:
    return not accepted or image.media_type in accepted


async def batch_get_image(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    images = data.image_rows(ecr.store, repo.name)
    accepted = params.get("acceptedMediaTypes")
    found, failures = [], []
    for image_id in params.get("imageIds") or []:
        image, code, reason = resolve(images, image_id)
        if image is not None and not _accepted(image, accepted):
            image, code, reason = (
                None,
                "ImageNotFound",
                (f"the manifest is {image.media_type}, not one of acceptedMediaTypes (no conversion)"),
            )
        if image is None:
            failures.append({"imageId": image_id, "failureCode": code, "failureReason": reason})
            continue
        ident = {
            "imageDigest": image.digest,
            **({"imageTag": image_id["imageTag"]} if image_id.get("imageTag") else {}),
        }
        found.append(
            {
                "registryId": ecr.account,
                "repositoryName": repo.name,
                "imageId": ident,
                "imageManifest": image.body.decode(),
                "imageManifestMediaType": image.media_type,
            }
        )
    return {"images": found, "failures": failures}


async def batch_delete_image(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """By digest: the image and its tags. By tag: the tag, and the image with its last tag
    (as ECR). An image an index of the repository names is not deleted
    (``ImageReferencedByManifestList``)."""
    repo = ecr.repository(call, params)
    meta = ecr.registry.meta
    deleted, failures = [], []
    for image_id in params.get("imageIds") or []:
        image, code, reason = resolve(data.image_rows(ecr.store, repo.name), image_id)
        if image is None:
            failures.append({"imageId": image_id, "failureCode": code, "failureReason": reason})
            continue
        tag = image_id.get("imageTag")
        if tag and not image_id.get("imageDigest") and len(image.tags) > 1:
            await meta.delete_tag(repo.name, tag)
        else:
            lists = data.parents(ecr.store, repo.name, image.digest)
            if lists:  # as ECR: an image an index names stays until the index goes
                failures.append(
                    {
                        "imageId": image_id,
                        "failureCode": "ImageReferencedByManifestList",
                        "failureReason": f"Requested image referenced by manifest list: [{', '.join(lists)}]",
                    }
                )
                continue
            await meta.delete_manifest(repo.name, image.digest)
        deleted.append({"imageDigest": image.digest, **({"imageTag": tag} if tag else {})})
        ecr.registry.image_action("DELETE", repo.name, image.digest, tag)
    return {"imageIds": deleted, "failures": failures}


async def put_image(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    name = ecr.repository_for_write(params)
    body = params.get("imageManifest", "").encode()
    if len(body) > MAX_MANIFEST:
        raise InvalidParameterException(f"imageManifest is larger than {MAX_MANIFEST} bytes")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    expected = params.get("imageDigest")
    if expected is not None and expected != digest:
        raise ImageDigestDoesNotMatchException(
            f"Invalid parameter at 'imageDigest' failed to satisfy constraint: 'The computed digest {digest}"
            f" does not match the digest {expected}'"
        )
    tag = params.get("imageTag")
    if tag is not None and not is_tag(tag):
        raise InvalidParameterException(
            f"Invalid parameter at 'imageTag' failed to satisfy constraint: '{tag}'"
        )
    try:
        manifest = parse_manifest(body, params.get("imageManifestMediaType"))
    except ManifestError as e:
        raise InvalidParameterException(
            f"Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Invalid JSON syntax': {e}"
        ) from None
    missing = [b.digest for b in manifest.blobs if ecr.registry.blobs.linked_size(name, b.digest) is None]
    if missing:
        raise LayersNotFoundException(
            f"Layers with digests '{missing}' required for pushing image into repository with name '{name}'"
            f" in the registry with id '{ecr.account}' do not exist"
        )
    children = [c.digest for c in manifest.children if not ecr.registry.meta.has_manifest(name, c.digest)]
    if children:
        raise ReferencedImagesNotFoundException(
            f"Manifests with digests '{children}' referenced do not exist"
        )
    meta = ecr.registry.meta
    if meta.has_manifest(name, digest):
        current = meta.manifest_by_tag(name, tag) if tag else None
        if tag is None or (current is not None and current.digest == digest):
            raise ImageAlreadyExistsException(
                f"Image with digest '{digest}'{f' and tag {tag!r}' if tag else ''} already exists in the"
                f" repository with name '{name}' in the registry with id '{ecr.account}'"
            )
    try:
        await meta.put_manifest(name, digest, body, manifest, tag)
    except TagImmutable as e:
        raise ImageTagAlreadyExistsException(str(e)) from None
    except BlobsMissing:
        raise LayersNotFoundException("a layer of the image was garbage collected meanwhile") from None
    ecr.registry.pushed(name, digest, tag)
    return {
        "image": {
            "registryId": ecr.account,
            "repositoryName": name,
            "imageId": {"imageDigest": digest, **({"imageTag": tag} if tag else {})},
            "imageManifest": body.decode(),
            "imageManifestMediaType": manifest.media_type,
        }
    }


def one_image(ecr: Ecr, call: Call, params: dict[str, Any]) -> tuple[str, data.Image, dict[str, Any]]:
    repo = ecr.repository(call, params)
    image_id = params.get("imageId") or {}
    image, code, reason = resolve(data.image_rows(ecr.store, repo.name), image_id)
    if image is None:
        if code in ("InvalidImageDigest", "InvalidImageTag", "MissingDigestAndTag"):
            raise InvalidParameterException(reason)
        raise _not_found(ecr, repo.name, image_id)
    return repo.name, image, image_id


def image_id_of(image: data.Image, image_id: dict[str, Any]) -> dict[str, str]:
    return {
        "imageDigest": image.digest,
        **({"imageTag": image_id["imageTag"]} if image_id.get("imageTag") else {}),
    }


async def start_image_scan(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Scan the image now, in the background: answers IN_PROGRESS (a scan already running is
    not started again)."""
    name, image, image_id = one_image(ecr, call, params)
    if ecr.scanner is None:
        raise InvalidParameterException("this registry is read-only: images are not scanned")
    current = scans.get(ecr.store, name, image.digest)
    if current is None or current.status != "IN_PROGRESS":
        running = scans.Scan(name, image.digest, "IN_PROGRESS", "", time.time(), None, None, {}, [])
        await scans.put(ecr.store, running)
        ecr.scanner.schedule(name, image.digest)
        current = running
    return {
        "registryId": ecr.account,
        "repositoryName": name,
        "imageId": image_id_of(image, image_id),
        "imageScanStatus": scan_status(current),
    }


async def describe_image_scan_findings(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The image's last scan: its status and, once COMPLETE, its findings (``maxResults`` up to
    1000 a page, by severity, then id). ScanNotFoundException: never scanned."""
    name, image, image_id = one_image(ecr, call, params)
    scan = scans.get(ecr.store, name, image.digest)
    if scan is None:
        raise ScanNotFoundException(
            f"Image scan does not exist for the image with '{_id_text(image_id)}' in the repository with name"
            f" '{name}' in the registry with id '{ecr.account}'"
        )
    findings = sorted(scan.findings, key=lambda f: (_RANK.get(f["severity"], 9), f["id"], f["package"]))
    page, token = paging.page(findings, params, InvalidParameterException, default=100, maximum=1000)
    out: dict[str, Any] = {
        "registryId": ecr.account,
        "repositoryName": name,
        "imageId": image_id_of(image, image_id),
        "imageScanStatus": scan_status(scan),
    }
    if scan.status == "COMPLETE":
        out["imageScanFindings"] = {**_summary(scan), "findings": [ecr_finding(f) for f in page]}
    if token:
        out["nextToken"] = token
    return out


_RANK = {s: i for i, s in enumerate(("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"))}


async def list_image_referrers(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    subject = (params.get("subjectId") or {}).get("imageDigest", "")
    if parse_digest(subject) is None:
        raise InvalidParameterException("Invalid parameter at 'subjectId.imageDigest': not a digest")
    types = (params.get("filter") or {}).get("artifactTypes") or []
    found = []
    for d in ecr.registry.meta.referrers(repo.name, subject, None):
        if types and d.get("artifactType") not in types:
            continue
        found.append(
            {
                "digest": d["digest"],
                "mediaType": d["mediaType"],
                "size": d["size"],
                "artifactStatus": "ACTIVE",
                **({"artifactType": d["artifactType"]} if d.get("artifactType") else {}),
                **({"annotations": d["annotations"]} if d.get("annotations") else {}),
            }
        )
    page, token = paging.page(found, params, InvalidParameterException, default=50, maximum=50)
    return {"referrers": page, **({"nextToken": token} if token else {})}


OPERATIONS = {
    "ListImages": (list_images, True),
    "DescribeImages": (describe_images, True),
    "BatchGetImage": (batch_get_image, True),
    "BatchDeleteImage": (batch_delete_image, False),
    "PutImage": (put_image, False),
    "StartImageScan": (start_image_scan, False),
    "DescribeImageScanFindings": (describe_image_scan_findings, True),
    "ListImageReferrers": (list_image_referrers, True),
}
