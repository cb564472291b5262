"""ECR layer operations over the registry's blob store and upload sessions.

``InitiateLayerUpload`` opens a registry upload session (the same kind a docker push uses:
hashed while streaming to disk, fsync'd, resumable); each ``UploadLayerPart`` appends one
part (base64 in the JSON body, at most one part in memory) at ``partFirstByte``, which must
be where the upload stands (``InvalidLayerPartException`` with ``lastValidByteReceived``
otherwise). Every part but the last must be at least :data:`MIN_PART` bytes: a part after a
smaller one is refused with ``LayerPartTooSmallException``. ``CompleteLayerUpload`` checks
the digest and links the blob to the repository. ``GetDownloadUrlForLayer`` answers a
short-lived signed URL on the registry port (:mod:`registry.ecr.tokens`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from dockyard.aws.errors import InvalidParameterException
from dockyard.aws.protocol import Call
from registry.ecr.errors import (
    EmptyUploadException,
    InvalidLayerException,
    InvalidLayerPartException,
    LayerAlreadyExistsException,
    LayerPartTooSmallException,
    LayersNotFoundException,
    UploadNotFoundException,
)
from registry.ecr.tokens import LAYER_ROUTE
from registry.reference import parse_digest
from registry.storage.errors import ChunkOutOfOrder, DigestMismatch, UploadUnknown

if TYPE_CHECKING:
    from registry.ecr.api import Ecr

__all__ = ["MIN_PART", "OPERATIONS"]

MIN_PART = 5 * 1024 * 1024  # ECR's minimum part (but the last); also the partSize answered

# upload id -> size of its last part (this process serves every write operation)
_last_part: dict[str, int] = {}


async def batch_check_layer_availability(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    layers, failures = [], []
    for digest in params.get("layerDigests") or []:
        if parse_digest(digest) is None:
            failures.append(
                {
                    "layerDigest": digest,
                    "failureCode": "InvalidLayerDigest",
                    "failureReason": "Invalid layer digest",
                }
            )
            continue
        size = ecr.registry.blobs.linked_size(repo.name, digest)
        if size is None:
            failures.append(
                {
                    "layerDigest": digest,
                    "failureCode": "MissingLayerDigest",
                    "failureReason": "Could not find layer",
                }
            )
        else:
            layers.append(
                {
                    "layerDigest": digest,
                    "layerAvailability": "AVAILABLE",
                    "layerSize": size,
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                }
            )
    return {"layers": layers, "failures": failures}


async def initiate_layer_upload(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    name = ecr.repository_for_write(params)
    session = await ecr.registry.uploads.start(name)
    if len(_last_part) > 10_000:  # abandoned uploads (GC drops them): forget their part sizes
        _last_part.clear()
    _last_part[session.id] = MIN_PART
    return {"uploadId": session.id, "partSize": MIN_PART}


async def _session(ecr: Ecr, name: str, upload_id: Any):
    try:
        return await ecr.registry.uploads.get(name, str(upload_id))
    except UploadUnknown:
        raise UploadNotFoundException(
            f"Upload with id '{str(upload_id)[:64]}' does not exist in repository '{name}'"
        ) from None


async def _one(part: bytes) -> AsyncIterator[bytes]:
    yield part


async def upload_layer_part(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    name = ecr.repository_for_write(params)
    session = await _session(ecr, name, params.get("uploadId"))
    first, last = params.get("partFirstByte"), params.get("partLastByte")
    try:
        part = base64.b64decode(params.get("layerPartBlob", ""), validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidParameterException("layerPartBlob is not valid base64") from None
    offset = session.offset
    if first != offset:
        raise InvalidLayerPartException(
            f"The part's first byte {first} is not where the upload stands: the last valid byte received"
            f" is {offset - 1}"
        )
    if not part or last - first + 1 != len(part):
        raise InvalidLayerPartException(
            f"partFirstByte {first} and partLastByte {last} describe {last - first + 1} bytes;"
            f" layerPartBlob has {len(part)}"
        )
    if offset and _last_part.get(session.id, MIN_PART) < MIN_PART:
        raise LayerPartTooSmallException(
            f"Layer part size is {_last_part[session.id]} bytes; every part but the last must be at least"
            f" {MIN_PART}"
        )
    try:
        await ecr.registry.uploads.append(session, _one(part), first, len(part))
    except ChunkOutOfOrder as e:
        raise InvalidLayerPartException(f"the last valid byte received is {e.offset - 1}") from None
    except UploadUnknown:
        raise UploadNotFoundException(f"Upload with id '{session.id}' does not exist") from None
    _last_part[session.id] = len(part)
    return {
        "registryId": ecr.account,
        "repositoryName": name,
        "uploadId": session.id,
        "lastByteReceived": session.offset - 1,
    }


async def complete_layer_upload(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    name = ecr.repository_for_write(params)
    session = await _session(ecr, name, params.get("uploadId"))
    digests = params.get("layerDigests") or []
    digest = parse_digest(digests[0]) if len(digests) == 1 else None
    if digest is None:
        raise InvalidParameterException("layerDigests must hold exactly one sha256 digest")
    if session.offset == 0:
        raise EmptyUploadException(f"The upload with id '{session.id}' does not contain any layer parts")
    uploads = ecr.registry.uploads
    if ecr.registry.blobs.linked_size(name, digest) is not None:
        await uploads.cancel(session)
        _last_part.pop(session.id, None)
        raise LayerAlreadyExistsException(
            f"The layer '{digest}' already exists in the repository with name '{name}' in the registry"
            f" with id '{ecr.account}'"
        )
    try:
        await uploads.finish(session, digest)
    except DigestMismatch as e:
        raise InvalidLayerException(
            f"The layer digest calculated for the upload does not match the digest {digest}: {e}"
        ) from None
    except UploadUnknown:
        raise UploadNotFoundException(f"Upload with id '{session.id}' does not exist") from None
    finally:
        _last_part.pop(session.id, None)
    return {
        "registryId": ecr.account,
        "repositoryName": name,
        "uploadId": session.id,
        "layerDigest": str(digest),
    }


async def get_download_url_for_layer(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    digest = params.get("layerDigest", "")
    if parse_digest(digest) is None:
        raise InvalidParameterException(
            f"Invalid parameter at 'layerDigest': {digest[:200]!r} is not a digest"
        )
    if ecr.registry.blobs.linked_size(repo.name, digest) is None:
        raise LayersNotFoundException(
            f"The layer with digest '{digest}' does not exist in the repository with name '{repo.name}'"
            f" in the registry with id '{ecr.account}'"
        )
    token = ecr.signer.layer_token(repo.name, digest)
    return {
        "downloadUrl": f"{ecr.scheme}://{ecr.registry_address}{LAYER_ROUTE}?token={token}",
        "layerDigest": digest,
    }


OPERATIONS = {
    "BatchCheckLayerAvailability": (batch_check_layer_availability, True),
    "InitiateLayerUpload": (initiate_layer_upload, False),
    "UploadLayerPart": (upload_layer_part, False),
    "CompleteLayerUpload": (complete_layer_upload, False),
    "GetDownloadUrlForLayer": (get_download_url_for_layer, True),
}
