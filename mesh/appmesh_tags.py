"""App Mesh's TagResource, UntagResource and ListTagsForResource on the ARN of a mesh or any
resource in one (virtual node, virtual service, virtual router, route).

Tags are kept with the resource (:meth:`mesh.data.Data.change_tags`); an unknown ARN is
NotFoundException, more than 50 tags TooManyTagsException (400). ListTagsForResource pages with
``limit`` and ``nextToken``.
"""

from __future__ import annotations

from typing import Any

from dockyard.aws.paging import page
from dockyard.aws.protocol import Call, Handler
from mesh.appmesh_errors import BadRequestException
from mesh.data import MAX_TAGS, Data

__all__ = ["Tags"]


class Tags:
    """The tag operations of one platform."""

    def __init__(self, data: Data) -> None:
        self.data = data

    async def tag(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        await self.data.change_tags(params["resourceArn"], list(params.get("tags") or []), [])
        return {}

    async def untag(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        await self.data.change_tags(params["resourceArn"], [], list(params.get("tagKeys") or []))
        return {}

    async def list(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        tags = self.data.tags_of(params["resourceArn"])
        chunk, token = page(tags, params, BadRequestException, default=MAX_TAGS, maximum=MAX_TAGS,
                            max_key="limit")
        out: dict[str, Any] = {"tags": chunk}
        if token:
            out["nextToken"] = token
        return out

    def operations(self) -> dict[str, tuple[Handler, bool]]:
        """Each operation's handler and whether it only reads."""
        return {"TagResource": (self.tag, False), "UntagResource": (self.untag, False),
                "ListTagsForResource": (self.list, True)}
