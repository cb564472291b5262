"""ECR's registry credentials and layer download URLs, signed with the registry's token key.

* ``GetAuthorizationToken`` answers ``base64("AWS:" + password)``: the password is an ES256
  JWT (audience :data:`LOGIN_AUDIENCE`) naming the access key that asked (``sub``) and, for
  temporary credentials, its role (``role``), valid :data:`LOGIN_TTL` (12 h, as ECR). The
  registry's token endpoint takes it as the password of user ``AWS`` (``docker login
  --username AWS``) and grants what that key may do then (:class:`Logins`).
* ``GetDownloadUrlForLayer`` answers ``<registry>/ecr/layer?token=JWT``: audience
  :data:`LAYER_AUDIENCE`, the repository and digest, valid :data:`LAYER_TTL` (10 min);
  whoever holds the URL may GET that one blob until then (as ECR's presigned S3 URLs).

Both are verified by signature and expiry only; nothing is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from dockyard import keys
from dockyard.iam.records import Principals
from dockyard.store import Store
from registry import jwt
from registry.ecr import data
from registry.ecr.policy import PolicyError, RepositoryPolicy, decide, user_actions
from registry.ecr.policy import parse as parse_policy
from registry.scopes import REPOSITORY, Scope, grant

__all__ = ["LAYER_ROUTE", "LAYER_TTL", "LOGIN_TTL", "USER", "Identity", "Logins", "Signer"]

USER = "AWS"
LOGIN_AUDIENCE = "dockyard-ecr-login"
LAYER_AUDIENCE = "dockyard-ecr-layer"
LOGIN_TTL = 12 * 3600
LAYER_TTL = 600
LAYER_ROUTE = "/ecr/layer"  # on the registry port
ISSUER = "dockyard"

# The ECR actions a registry action needs (docker pull: BatchGetImage and
# GetDownloadUrlForLayer; docker push: the layer upload operations and PutImage).
REGISTRY_ACTIONS = {
    "pull": ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
    "push": ("ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"),
    "delete": ("ecr:BatchDeleteImage",),
}


class Signer:
    """Issues and checks the two kinds of token with one P-256 key."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, clock: Callable[[], float] = time.time) -> None:
        self.key, self.public_key = key, key.public_key()
        self.kid = jwt.key_id(self.public_key)
        self.clock = clock

    def _sign(self, audience: str, ttl: int, **claims: str) -> tuple[str, int]:
        now = int(self.clock())
        body = {"iss": ISSUER, "aud": audience, "iat": now, "nbf": now, "exp": now + ttl, **claims}
        return jwt.encode(body, self.key, self.kid), now + ttl

    def _check(self, token: str, audience: str) -> dict | None:
        try:
            claims = jwt.decode(token, self.public_key, self.kid, audience, self.clock())
        except jwt.InvalidToken:
            return None
        return claims if claims.get("iss") == ISSUER else None

    def login_password(self, key_id: str, role: str = "") -> tuple[str, int]:
        """A registry password for ``key_id`` and when it expires (epoch seconds)."""
        return self._sign(LOGIN_AUDIENCE, LOGIN_TTL, sub=key_id, role=role)

    def login_of(self, password: str) -> tuple[str, str] | None:
        """``(key id, role)`` of a valid password, None otherwise."""
        claims = self._check(password, LOGIN_AUDIENCE)
        if claims is None or not isinstance(claims.get("sub"), str):
            return None
        role = claims.get("role")
        return claims["sub"], role if isinstance(role, str) else ""

    def layer_token(self, repository: str, digest: str) -> str:
        return self._sign(LAYER_AUDIENCE, LAYER_TTL, repo=repository, digest=digest)[0]

    def layer_of(self, token: str) -> tuple[str, str] | None:
        """``(repository, digest)`` a valid download token names, None otherwise."""
        claims = self._check(token, LAYER_AUDIENCE)
        if (
            claims is None
            or not isinstance(claims.get("repo"), str)
            or not isinstance(claims.get("digest"), str)
        ):
            return None
        return claims["repo"], claims["digest"]


@dataclass(frozen=True)
class Identity:
    """Who logged in with an ECR password: the key, its principal ARN and identity policies
    (None: an administrator key, which may do anything)."""

    key_id: str
    arn: str
    policies: tuple | None


class Logins:
    """The registry's side of ``docker login --username AWS``: the identity of a password
    and the scopes it may have, under the key's IAM policy and the repositories' policies
    (:func:`registry.ecr.policy.decide`)."""

    def __init__(self, store: Store, signer: Signer, account: str, region: str) -> None:
        self.store, self.signer, self.account, self.region = store, signer, account, region
        self.principals = Principals(store, account)

    def identify(self, password: str) -> Identity | None:
        found = self.signer.login_of(password)
        if found is None:
            return None
        key_id, role = found
        if role:
            principal = self.principals.role(role, key_id, key_id)
            return None if principal is None else Identity(key_id, principal.arn, principal.policies)
        if keys.secret_for(self.store, key_id) is None:
            return None  # the key was deleted since
        principal = self.principals.get(key_id)
        if principal is None:
            return Identity(key_id, f"arn:aws:iam::{self.account}:root", None)
        return Identity(key_id, principal.arn, principal.policies)

    def grant(self, identity: Identity, requested: Iterable[Scope]) -> list[Scope]:
        """The requested scopes cut down to what ``identity`` may do now."""
        requested = list(requested)
        if identity.policies is None:
            return grant(requested, admin=True, grants={}, anonymous=())
        out = []
        for scope in requested:
            if scope.type != REPOSITORY:
                continue
            repo = self._policy(scope.name)
            arn = f"arn:aws:ecr:{self.region}:{self.account}:repository/{scope.name}"
            wanted = (
                REGISTRY_ACTIONS
                if "*" in scope.actions
                else {a: REGISTRY_ACTIONS[a] for a in scope.actions if a in REGISTRY_ACTIONS}
            )
            got = tuple(
                a
                for a, needs in wanted.items()
                if all(decide(identity.policies, repo, identity.arn, self.account, n, arn) for n in needs)
            )
            if got:
                out.append(Scope(REPOSITORY, scope.name, got))
        return out

    def for_user(self, name: str, requested: Iterable[Scope], granted: list[Scope]) -> list[Scope]:
        """The scopes of registry user ``name`` (``granted`` by its prefix grants) under the
        repositories' policies, the user being ``arn:aws:iam::ACCOUNT:user/NAME``: per
        registry action, an explicit ``Deny`` of an ECR action it needs takes it away, an
        ``Allow`` of every one adds it (AWS's same-account rule, the grants as the identity
        side)."""
        arn = f"arn:aws:iam::{self.account}:user/{name}"
        have = {s.name: set(s.actions) for s in granted if s.type == REPOSITORY}
        wanted: dict[str, set[str]] = {}
        for scope in requested:
            if scope.type == REPOSITORY:
                actions = set(REGISTRY_ACTIONS) if "*" in scope.actions else set(scope.actions)
                wanted.setdefault(scope.name, set()).update(actions)
        changed: dict[str, tuple[str, ...]] = {}
        for repository, actions in wanted.items():
            repo = self._policy(repository)
            if repo is None:
                continue
            resource = f"arn:aws:ecr:{self.region}:{self.account}:repository/{repository}"
            ctx = {"aws:username": name, "aws:principalarn": arn, "aws:principaltype": "User"}
            got = user_actions(
                repo, arn, self.account, resource, ctx, REGISTRY_ACTIONS, actions, have.get(repository, set())
            )
            changed[repository] = got
        out = [
            s for s in granted if s.type != REPOSITORY or s.name not in changed
        ]
        out += [Scope(REPOSITORY, n, a) for n, a in changed.items() if a]
        return out

    def _policy(self, repository: str) -> RepositoryPolicy | None:
        s = data.settings(self.store, repository)
        if s is None or s.policy is None:
            return None
        try:
            return parse_policy(s.policy)
        except PolicyError:
            return None
