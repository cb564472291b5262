"""Token scopes of the Docker registry token flow, as pure functions.

A scope names a resource and actions: ``repository:shop/web:pull,push``, ``registry:catalog:*``
(docker/distribution ``docs/spec/auth/scope.md``). This module:

* parses the ``scope`` parameters a client sends to the token endpoint (:func:`parse_scope`);
* decides which of the requested actions a user gets (:func:`grant`): an admin gets every
  action asked for; a user the actions of its grants on a covering prefix; everyone the
  ``pull`` of an anonymous-pull prefix; ``registry:catalog:*`` only an admin;
* derives the scopes an API request needs from its method, path and query
  (:func:`required_scopes`), the way Distribution's ``appendAccessRecords`` does: GET/HEAD
  need ``pull``; anything under ``blobs/uploads`` (start, chunks, status, cancel) ``pull,push``;
  a manifest PUT ``push``; any other DELETE ``delete``; ``/v2/_catalog`` ``registry:catalog:*``; a
  cross-repository mount also ``pull`` on the ``from`` repository (reported separately so
  that the middleware can fall back to a plain upload instead of refusing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from registry import routes
from registry.users import ACTIONS, allowed_actions

__all__ = ["Need", "Scope", "challenge_scope", "grant", "parse_scope", "required_scopes"]

REPOSITORY = "repository"
REGISTRY = "registry"
CATALOG = "catalog"


@dataclass(frozen=True)
class Scope:
    """One resource and a tuple of actions (``*`` stands for every action)."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def access(self) -> dict[str, object]:
        """The JWT ``access`` entry for this scope."""
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(text: str) -> Scope | None:
    """``type:name:actions`` -> Scope; None when malformed. The name may itself contain
    ``:`` (only the first and last separators count, as in Distribution)."""
    first, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep and sep2 and first and name and actions):
        return None
    acts = tuple(dict.fromkeys(a for a in actions.split(",") if a))
    return Scope(first, name, acts) if acts else None


def grant(
    requested: Iterable[Scope],
    *,
    admin: bool,
    grants: Mapping[str, Iterable[str]],
    anonymous: Iterable[str],
) -> list[Scope]:
    """The scopes to put in a token: each requested scope cut down to the actions this
    principal may take (scopes left with no action are dropped; same resources merged)."""
    anonymous = list(anonymous)
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in requested:
        wanted = set(scope.actions)
        if scope.type == REPOSITORY:
            if "*" in wanted:
                wanted = set(ACTIONS)
            if admin:
                allowed = set(ACTIONS)
            else:
                allowed = allowed_actions(grants, scope.name)
                if allowed_actions({p: ("pull",) for p in anonymous}, scope.name):
                    allowed.add("pull")
            got = wanted & allowed
        elif scope.type == REGISTRY and scope.name == CATALOG:
            got = wanted & {"*"} if admin else set()
        else:
            got = set()
        if got:
            merged.setdefault((scope.type, scope.name), set()).update(got)
    order = {a: i for i, a in enumerate((*ACTIONS, "*"))}
    return [Scope(t, n, tuple(sorted(a, key=lambda x: order.get(x, 99)))) for (t, n), a in merged.items()]


@dataclass(frozen=True)
class Need:
    """What one API request needs: ``scopes`` (all required), and optionally a mount source
    whose ``pull`` decides only whether the mount is attempted."""

    scopes: tuple[Scope, ...]
    mount_from: str | None = None


def required_scopes(method: str, path: str, query: Mapping[str, str]) -> Need:
    """The scopes a ``/v2/`` request needs (see module docstring). ``/v2/`` itself and
    unknown paths need no scope (but still a valid token). Paths are read by
    :func:`registry.routes.route`, as the handlers read them."""
    found = routes.route(path)
    if found is None or found.kind == routes.BASE:
        return Need(())
    if found.kind == routes.CATALOG:
        return Need((Scope(REGISTRY, CATALOG, ("*",)),))
    method = method.upper()
    uploads = found.kind in (routes.UPLOADS, routes.UPLOAD)
    if uploads:
        actions: tuple[str, ...] = ("pull", "push")
    elif method in ("GET", "HEAD"):
        actions = ("pull",)
    elif method == "DELETE":
        actions = ("delete",)
    else:
        actions = ("push",)
    mount_from = None
    if found.kind == routes.UPLOADS and method == "POST" and query.get("mount") and query.get("from"):
        mount_from = query["from"]
    return Need((Scope(REPOSITORY, found.name, actions),), mount_from)


def challenge_scope(need: Need) -> str:
    """The ``scope`` of a ``WWW-Authenticate`` challenge for ``need`` (space-separated)."""
    scopes = list(need.scopes)
    if need.mount_from:
        scopes.append(Scope(REPOSITORY, need.mount_from, ("pull",)))
    return " ".join(str(s) for s in scopes)
