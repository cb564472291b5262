"""ECR lifecycle policy operations, their preview, and the periodic application.

The policy text is stored with the repository's settings once :func:`registry.ecr.lifecycle.parse`
accepts it (``InvalidParameterException`` naming what is wrong otherwise). A preview is
evaluated at once (``status`` ``COMPLETE``) and kept in the registry settings until the next
one. :func:`apply_all` expires, in every repository with a policy, the images the policy
selects (``Metadata.delete_manifest``: the image and its tags); their blobs are reclaimed by
the next garbage collection once no manifest names them. ``install`` runs it every
``lifecycle_interval`` seconds in the main process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from dockyard.aws import paging
from dockyard.aws.errors import InvalidParameterException
from dockyard.aws.protocol import Call
from dockyard.periodic import every
from dockyard.store import Store
from registry.ecr import data
from registry.ecr.errors import LifecyclePolicyNotFoundException, LifecyclePolicyPreviewNotFoundException
from registry.ecr.lifecycle import Candidate, LifecycleError, Rule, evaluate, parse
from registry.metadata import Metadata

if TYPE_CHECKING:
    from dockyard.platform import Platform
    from registry.ecr.api import Ecr

__all__ = ["OPERATIONS", "apply_all", "checked_rules", "expiring"]

log = logging.getLogger("dockyard.registry")
PREVIEW = "lifecycle-preview/"


def checked_rules(text: Any) -> list[Rule]:
    """The rules of lifecycle policy ``text``; InvalidParameterException saying what is wrong."""
    try:
        return parse(text if isinstance(text, str) else "")
    except LifecycleError as e:
        raise InvalidParameterException(
            f"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy"
            f" validation failure: {e}'"
        ) from None


def expiring(store: Store, name: str, text: str, now: float) -> list[tuple[data.Image, int]]:
    """The images of ``name`` that policy ``text`` expires at ``now``, with the rule's priority."""
    images = data.image_rows(store, name)
    chosen = evaluate(parse(text), [Candidate(i.digest, i.tags, i.pushed) for i in images], now)
    return [(i, chosen[i.digest]) for i in images if i.digest in chosen]


async def put_lifecycle_policy(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    text = params.get("lifecyclePolicyText")
    checked_rules(text)
    await data.update(ecr.store, repo.name, lifecycle=text)
    return {"registryId": ecr.account, "repositoryName": repo.name, "lifecyclePolicyText": text}


def _policy(ecr: Ecr, repo: data.Settings) -> dict[str, Any]:
    if repo.lifecycle is None:
        raise LifecyclePolicyNotFoundException(
            f"Lifecycle policy does not exist for the repository with name '{repo.name}' in the registry"
            f" with id '{ecr.account}'"
        )
    out: dict[str, Any] = {
        "registryId": ecr.account,
        "repositoryName": repo.name,
        "lifecyclePolicyText": repo.lifecycle,
    }
    if repo.lifecycle_evaluated is not None:
        out["lastEvaluatedAt"] = repo.lifecycle_evaluated
    return out


async def get_lifecycle_policy(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return _policy(ecr, ecr.repository(call, params))


async def delete_lifecycle_policy(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    out = _policy(ecr, repo)
    await data.update(ecr.store, repo.name, lifecycle=None, lifecycle_evaluated=None)
    return out


async def start_lifecycle_policy_preview(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    text = params.get("lifecyclePolicyText") or repo.lifecycle
    if text is None:
        _policy(ecr, repo)  # raises: nothing to preview
    checked_rules(text)
    results = [
        {
            "imageTags": list(image.tags),
            "imageDigest": image.digest,
            "imagePushedAt": image.pushed,
            "action": {"type": "EXPIRE"},
            "appliedRulePriority": priority,
        }
        for image, priority in expiring(ecr.store, repo.name, text, time.time())
    ]
    await data.put_registry_setting(ecr.store, PREVIEW + repo.name, {"text": text, "results": results})
    return {
        "registryId": ecr.account,
        "repositoryName": repo.name,
        "lifecyclePolicyText": text,
        "status": "COMPLETE",
    }


async def get_lifecycle_policy_preview(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    preview = data.registry_setting(ecr.store, PREVIEW + repo.name)
    if preview is None:
        raise LifecyclePolicyPreviewNotFoundException(
            f"There is no dry run for the repository with name '{repo.name}' in the registry with id"
            f" '{ecr.account}'"
        )
    results = preview["results"]
    status = (params.get("filter") or {}).get("tagStatus", "ANY")
    if status != "ANY":
        results = [r for r in results if bool(r["imageTags"]) == (status == "TAGGED")]
    wanted = params.get("imageIds")
    if wanted:
        results = [
            r
            for r in results
            if any(
                (not w.get("imageDigest") or w["imageDigest"] == r["imageDigest"])
                and (not w.get("imageTag") or w["imageTag"] in r["imageTags"])
                for w in wanted
            )
        ]
    page, token = paging.page(results, params, InvalidParameterException, default=100, maximum=100)
    out: dict[str, Any] = {
        "registryId": ecr.account,
        "repositoryName": repo.name,
        "lifecyclePolicyText": preview["text"],
        "status": "COMPLETE",
        "previewResults": page,
        "summary": {"expiringImageTotalCount": len(preview["results"])},
    }
    if token:
        out["nextToken"] = token
    return out


async def apply_all(meta: Metadata, now: float | None = None) -> dict[str, list[str]]:
    """Expire what every repository's lifecycle policy selects; returns the digests expired
    by repository. A stored policy that no longer parses is skipped (logged)."""
    now = time.time() if now is None else now
    done: dict[str, list[str]] = {}
    for repo in data.all_settings(meta.store):
        if repo.lifecycle is None:
            continue
        try:
            chosen = expiring(meta.store, repo.name, repo.lifecycle, now)
        except LifecycleError as e:
            log.warning("lifecycle policy skipped", extra={"repository": repo.name, "error": str(e)})
            continue
        for image, _ in chosen:
            if await meta.delete_manifest(repo.name, image.digest):
                done.setdefault(repo.name, []).append(image.digest)
        await data.update(meta.store, repo.name, lifecycle_evaluated=now)
    if done:
        log.info("lifecycle policies expired images", extra={"images": sum(map(len, done.values()))})
    return done


def periodic(meta: Metadata):
    """A start/stop hook applying the policies every ``lifecycle_interval`` seconds."""

    async def context(platform: Platform) -> AsyncIterator[None]:
        async def step() -> None:
            await apply_all(meta)

        async with every(platform.config.lifecycle_interval, step, name="registry-lifecycle",
                         what="lifecycle policies", log=log):
            yield

    return context


OPERATIONS = {
    "PutLifecyclePolicy": (put_lifecycle_policy, False),
    "GetLifecyclePolicy": (get_lifecycle_policy, True),
    "DeleteLifecyclePolicy": (delete_lifecycle_policy, False),
    "StartLifecyclePolicyPreview": (start_lifecycle_policy_preview, False),
    "GetLifecyclePolicyPreview": (get_lifecycle_policy_preview, True),
}
