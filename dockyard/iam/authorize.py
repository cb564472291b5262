"""The authorization of every control-API call (and of ``GET /events``).

:class:`Authorizer` is what the AWS layer calls (``Operations.authorize``) once the caller is
verified and the operation and its parameters are known: an administrator key passes at once;
a key with a policy is checked (:func:`dockyard.iam.policy.evaluate`) on the action and
resources of :func:`dockyard.iam.actions.target`, with these condition keys:

``aws:username``, ``aws:userid`` (the key id), ``aws:PrincipalArn``, ``aws:PrincipalType``,
``aws:PrincipalAccount``, ``aws:SourceIp`` (the client's address; absent with
``control_workers`` > 1, where the main process only sees the workers), ``aws:SecureTransport``
(false: the control port speaks plain HTTP), ``aws:CurrentTime``, ``aws:EpochTime``,
``aws:RequestedRegion`` (the signature's region) and the operation's own keys
(``ecs:cluster``, ...).

A refusal is AWS's ``AccessDeniedException``: ``User: arn:aws:iam::ACCOUNT:user/NAME is not
authorized to perform: ecs:CreateCluster on resource: ARN because no identity-based policy
allows the ecs:CreateCluster action`` (or ``with an explicit deny in an identity-based
policy``). :func:`permits` asks the same question for a further action inside a handler
(``dockyard:RunPrivilegedTask``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dockyard.aws.errors import AccessDeniedException, UnrecognizedClientException
from dockyard.aws.protocol import PEER, Call
from dockyard.config import Config
from dockyard.iam import actions, sessions
from dockyard.iam.policy import Policy, Request, combine, evaluate
from dockyard.iam.records import Principal, Principals
from dockyard.store import Store

__all__ = ["PEER", "Authorizer", "ResourcePolicies", "caller", "denial", "permits"]

ResourcePolicies = Callable[[str, str], Sequence[Policy]]
"""``(resource ARN, principal ARN)`` -> the statements of that resource's policy naming the
principal, as identity-style policies (a part registers one per action prefix)."""

_STATE = "dockyard.iam"


def denial(principal_arn: str, action: str, resource: str, explicit: bool, by_resource: bool = False) -> str:
    """AWS's message for a refused request."""
    kind = "a resource-based" if by_resource else "an identity-based"
    why = (
        f"with an explicit deny in {kind} policy" if explicit
        else f"because no identity-based policy allows the {action} action"
    )
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {why}"


def context(principal: Principal, call: Call, account: str, peer_known: bool) -> dict[str, Any]:
    now = time.time()
    ctx: dict[str, Any] = {
        "aws:username": principal.name,
        "aws:userid": principal.access_key_id,
        "aws:principalarn": principal.arn,
        "aws:principaltype": principal.kind,
        "aws:principalaccount": account,
        "aws:securetransport": False,
        "aws:currenttime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "aws:epochtime": int(now),
    }
    peer = call.headers.get(PEER)
    if peer and peer_known:
        ctx["aws:sourceip"] = peer
    if call.credential is not None and call.credential.region:
        ctx["aws:requestedregion"] = call.credential.region
    return ctx


class Authorizer:
    """``Operations.authorize``: raises ``AccessDeniedException`` for a call its key's policy
    does not allow (see the module docstring)."""

    def __init__(self, store: Store, config: Config, session_key: bytes | None = None) -> None:
        self.principals = Principals(store, config.account_id)
        self.session_key = session_key
        self.region = config.region
        self.account = config.account_id
        self.peer_known = config.control_workers <= 1
        self.resource_policies: dict[str, ResourcePolicies] = {}
        """By action prefix (``ecr``): the resource-based policies a call is also judged by
        (:func:`dockyard.iam.policy.combine`; AWS's rule within one account)."""

    def __call__(self, call: Call, params: Mapping[str, Any]) -> None:
        if call.credential is None:
            return
        key_id = call.credential.access_key
        if key_id.startswith(sessions.PREFIX):
            principal = self._session(call, key_id)
        else:
            principal = self.principals.get(key_id)
            if principal is None:
                return  # an administrator key
        target = actions.target(call.service, call.operation, params, self.region, self.account)
        ctx = {**context(principal, call, self.account, self.peer_known), **target.context}
        call.extra[_STATE] = (principal, ctx)
        request = Request(target.action, target.resources, ctx)
        policies_of = self.resource_policies.get(target.action.split(":", 1)[0])
        if policies_of is None:
            decision = evaluate(principal.policies, request)
        else:
            decision = combine(principal.policies, lambda arn: policies_of(arn, principal.arn), request)
        if not decision.allowed:
            raise AccessDeniedException(
                denial(
                    principal.arn, target.action, decision.resource, decision.explicit_deny,
                    decision.by_resource_policy,
                )
            )


    def _session(self, call: Call, key_id: str) -> Principal:
        """The role principal of temporary credentials: ``X-Amz-Security-Token`` must be the
        session's token, and its role must still exist."""
        token = call.headers.get("x-amz-security-token", "")
        found = sessions.verify(self.session_key, key_id, token) if self.session_key and token else None
        principal = None
        if found is not None:
            principal = self.principals.role(found.role, found.task_arn.rsplit("/", 1)[-1], key_id)
        if principal is None:
            raise UnrecognizedClientException("The security token included in the request is invalid.")
        return principal


def caller(call: Call) -> tuple[Principal, dict[str, Any]] | None:
    """The limited principal of an authorized ``call`` and its condition keys (None: an
    administrator key, or a call no :class:`Authorizer` checked)."""
    return call.extra.get(_STATE)


def permits(call: Call, action: str, resources: Sequence[str]) -> bool:
    """Whether the caller of ``call``, already authorized for it, may also do ``action`` on
    ``resources`` (an administrator, or a call no :class:`Authorizer` checked, may)."""
    state = call.extra.get(_STATE)
    if state is None:
        return True
    principal, ctx = state
    return evaluate(principal.policies, Request(action, tuple(resources) or ("*",), ctx)).allowed


def require(call: Call, action: str, resources: Sequence[str]) -> None:
    """:func:`permits`, raising AWS's ``AccessDeniedException`` (naming ``action`` and the
    refused resource) when the caller may not."""
    state = call.extra.get(_STATE)
    if state is None:
        return
    principal, ctx = state
    decision = evaluate(principal.policies, Request(action, tuple(resources) or ("*",), ctx))
    if not decision.allowed:
        raise AccessDeniedException(denial(principal.arn, action, decision.resource, decision.explicit_deny))
