"""ECS service deployments and service revisions: the records and their operations.

Each deployment of a service (``deployments[]``, by its ``ecs-svc/<digits>`` id) is one service
deployment (``arn:aws:ecs:<region>:<account>:service-deployment/<cluster>/<service>/<digits>``)
that targets one service revision (``...:service-revision/<cluster>/<service>/<digits>``). The
service loop writes each record (:func:`record`, pure) as the deployment moves, and once more
when it is retired; a service keeps its newest 50 (:data:`runner.data.MAX_SERVICE_DEPLOYMENTS`).

Statuses: a traffic shift (:mod:`runner.shift`) is IN_PROGRESS until its outcome: SUCCESSFUL;
ROLLBACK_IN_PROGRESS while a rolled-back revision still has tasks, then ROLLBACK_SUCCESSFUL;
STOPPED (StopServiceDeployment ABORT, or an alarm with ``rollback`` false). A ROLLING deployment
is IN_PROGRESS, SUCCESSFUL once COMPLETED, ROLLBACK_SUCCESSFUL when the circuit breaker rolled
it back, STOPPED when a newer deployment replaced it first.

Operations: ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions,
StopServiceDeployment (traffic shifts only: ``ROLLBACK``, the default, or ``ABORT``) and
ContinueServiceDeployment (the PAUSE hook awaiting action: ``CONTINUE``, the default, or
``ROLLBACK``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import clusters, data, shift
from runner.errors import (
    InvalidParameterException,
    ServiceDeploymentNotFoundException,
    ServiceNotFoundException,
)
from runner.serviceshapes import ROLLBACK_OF, TRIGGERED, service_arn

__all__ = ["MIGRATIONS", "OPERATIONS", "deployment_arn", "record", "revision_arn", "shift_of"]

MIGRATIONS = [
    Migration(
        "runner_service_deployments",
        1,
        """
        CREATE TABLE service_deployments (
            arn TEXT PRIMARY KEY, revision_arn TEXT NOT NULL, cluster TEXT NOT NULL,
            service TEXT NOT NULL, created_at REAL NOT NULL, body TEXT NOT NULL);
        CREATE INDEX service_deployments_service ON service_deployments (cluster, service, created_at);
        CREATE INDEX service_deployments_revision ON service_deployments (revision_arn);
        """,
    )
]

SHIFT = "shift"
REVISION = "revision"  # the body's ServiceRevision (not a ServiceDeployment member)
BRIEF = ("serviceDeploymentArn", "serviceArn", "clusterArn", "startedAt", "createdAt", "finishedAt",
         "status", "statusReason")


def _digits(dep_id: str) -> str:
    return dep_id.rsplit("/", 1)[-1]


def _arn(config: Config, kind: str, cluster: str, service: str, dep_id: str) -> str:
    return f"arn:aws:ecs:{config.region}:{config.account_id}:{kind}/{cluster}/{service}/{_digits(dep_id)}"


def deployment_arn(config: Config, cluster: str, service: str, dep_id: str) -> str:
    return _arn(config, "service-deployment", cluster, service, dep_id)


def revision_arn(config: Config, cluster: str, service: str, dep_id: str) -> str:
    return _arn(config, "service-revision", cluster, service, dep_id)


def shift_of(dep: Mapping[str, Any]) -> tuple[shift.Strategy, shift.State] | None:
    """A deployment's traffic-shift strategy and state; None for a ROLLING one."""
    raw = dep.get(SHIFT)
    if not raw:
        return None
    strategy = shift.strategy_of(raw["config"])
    if strategy is None:
        return None
    return strategy, shift.state_from_json(raw["state"])


def _revision(config: Config, cluster: str, service: str, dep: Mapping[str, Any],
              spec: Mapping[str, Any]) -> dict[str, Any]:
    defn = dep.get("definition") or {}
    out: dict[str, Any] = {
        "serviceRevisionArn": revision_arn(config, cluster, service, dep["id"]),
        "serviceArn": service_arn(config, cluster, service),
        "clusterArn": clusters.cluster_arn(config, cluster),
        "taskDefinition": dep.get("taskDefinition", ""),
        "launchType": dep.get("launchType", "EC2"),
        "serviceRegistries": list(spec.get("serviceRegistries") or []),
        "containerImages": [{"containerName": c.get("name", ""), "image": c.get("image", "")}
                            for c in defn.get("containerDefinitions") or []],
        "createdAt": dep.get("createdAt"),
    }
    for key in ("networkConfiguration", "serviceConnectConfiguration", "platformVersion", "platformFamily"):
        if dep.get(key):
            out[key] = copy.deepcopy(dep[key])
    return out


def _status(dep: Mapping[str, Any], retired: bool, rolled_back: bool) -> tuple[str, str]:
    found = shift_of(dep)
    if found is not None:
        state = found[1]
        if not state.outcome:
            return "IN_PROGRESS", f"Service deployment in {state.stage}."
        if state.outcome == "ROLLBACK":
            return ("ROLLBACK_SUCCESSFUL" if retired else "ROLLBACK_IN_PROGRESS"), state.reason
        if state.outcome == "SUCCESSFUL":
            return "SUCCESSFUL", state.reason
        return "STOPPED", state.reason
    rollout = dep.get("rolloutState", "IN_PROGRESS")
    if rollout == "COMPLETED":
        return "SUCCESSFUL", dep.get("rolloutStateReason", "")
    if rollout == "FAILED":
        return ("ROLLBACK_SUCCESSFUL" if rolled_back else "STOPPED"), dep.get("rolloutStateReason", "")
    if dep.get("status") != "PRIMARY":
        return "STOPPED", "A newer service deployment replaced it."
    return "IN_PROGRESS", dep.get("rolloutStateReason", "")


def record(
    config: Config,
    cluster: str,
    service: str,
    spec: Mapping[str, Any],
    dep: Mapping[str, Any],
    deps: Sequence[Mapping[str, Any]],
    counts: Mapping[str, Mapping[str, int]],
    now: float,
    *,
    previous: Mapping[str, Any] | None = None,
    retired: bool = False,
) -> data.ServiceDeploymentRecord:
    """The record of ``dep`` (one of the service's ``deps``, or just retired from them), with its
    task ``counts`` per deployment id; ``previous`` is its last record (its sources stay)."""
    found = shift_of(dep)
    arn = deployment_arn(config, cluster, service, dep["id"])
    rolled_back = any(d.get("status") == "PRIMARY" and d["id"] != dep["id"] and d.get("createdAt", 0) >
                      dep.get("createdAt", 0) for d in deps) and dep.get("rolloutState") == "FAILED"
    status, reason = _status(dep, retired, rolled_back)
    green = 100.0
    test = False
    if found is not None:
        t = shift.traffic(*found)
        green, test = t.green, t.test

    def summary(d_id: str, desired: int, production: float, test_weight: float) -> dict[str, Any]:
        c = counts.get(d_id, {})
        return {"arn": revision_arn(config, cluster, service, d_id), "requestedTaskCount": desired,
                "runningTaskCount": c.get("running", 0), "pendingTaskCount": c.get("pending", 0),
                "requestedProductionTrafficWeight": production, "requestedTestTrafficWeight": test_weight}

    desired = int(spec.get("desiredCount", 0))
    active = not retired and status in ("IN_PROGRESS", "ROLLBACK_IN_PROGRESS")
    if found is not None:
        sources = [dep[SHIFT]["source"]]
    elif previous is not None:
        sources = [s["arn"].rsplit("/", 1)[-1] for s in previous.get("sourceServiceRevisions") or []]
    else:
        sources = [d["id"] for d in deps if d["id"] != dep["id"]]
    source_desired = desired if found is not None and active else 0
    body: dict[str, Any] = {
        "serviceDeploymentArn": arn,
        "serviceArn": service_arn(config, cluster, service),
        "clusterArn": clusters.cluster_arn(config, cluster),
        "createdAt": dep.get("createdAt"),
        "startedAt": dep.get("createdAt"),
        "updatedAt": now,
        "sourceServiceRevisions": [
            summary(s if "/" in s else f"ecs-svc/{s}", source_desired, 100.0 - green, 0.0 if test else 100.0)
            for s in sources
        ],
        "targetServiceRevision": summary(dep["id"], 0 if status.startswith("ROLLBACK") else desired, green,
                                         100.0 if test else 0.0),
        "status": status,
        "statusReason": reason,
        "deploymentConfiguration": copy.deepcopy(dict(dep[SHIFT]["config"] if found else
                                                      spec.get("deploymentConfiguration") or {})),
    }
    breaker = body["deploymentConfiguration"].get("deploymentCircuitBreaker") or {}
    body["deploymentCircuitBreaker"] = {
        "status": "DISABLED" if not breaker.get("enable") else
        ("TRIGGERED" if dep.get("rolloutState") == "FAILED" and found is None else
         "MONITORING" if active else "MONITORING_COMPLETE"),
        "failureCount": int(dep.get("failed", 0)),
        "threshold": max(3, min(200, -(-desired // 2))),
    }
    if found is not None:
        strategy, state = found
        body["lifecycleStage"] = state.stage
        alarms = strategy.alarms
        body["alarms"] = {
            "status": "DISABLED" if not (alarms.enable and alarms.names) else
            "TRIGGERED" if state.triggered else "MONITORING" if not state.outcome else "MONITORING_COMPLETE",
            "alarmNames": list(alarms.names),
            "triggeredAlarmNames": list(state.triggered),
        }
        if state.outcome == "ROLLBACK":
            body["rollback"] = {"reason": state.reason, "startedAt": state.ended_at,
                                "serviceRevisionArn": revision_arn(config, cluster, service, sources[0])}
        if state.hook:
            hook = next((h for h in strategy.hooks if h.id == state.hook), None)
            if hook is not None:
                body["lifecycleHookDetails"] = [{
                    "hookId": hook.id, "targetType": "PAUSE", "status": "AWAITING_ACTION",
                    "expiresAt": state.hook_since + hook.timeout_minutes * config.deployment_minute_seconds,
                    "timeoutAction": hook.timeout_action,
                }]
        if state.ended_at is not None and (state.outcome != "ROLLBACK" or retired):
            body["finishedAt"] = state.ended_at if state.outcome != "ROLLBACK" else now
    else:
        _rolling_alarms(body, config, cluster, service, dep, deps, active, rolled_back)
        if status != "IN_PROGRESS":
            body["finishedAt"] = (previous or {}).get("finishedAt") or dep.get("updatedAt") or now
    if status == "STOPPED":
        body["stoppedAt"] = body.get("finishedAt") or (previous or {}).get("stoppedAt") or now
        body["finishedAt"] = body["stoppedAt"]
    if previous is not None and previous.get("finishedAt") and status == previous.get("status"):
        body["finishedAt"] = previous["finishedAt"]
    body[REVISION] = _revision(config, cluster, service, dep, spec)
    return data.ServiceDeploymentRecord(arn, body[REVISION]["serviceRevisionArn"], cluster, service,
                                        float(dep.get("createdAt") or now), body)


def _rolling_alarms(
    body: dict[str, Any], config: Config, cluster: str, service: str, dep: Mapping[str, Any],
    deps: Sequence[Mapping[str, Any]], active: bool, rolled_back: bool,
) -> None:
    """A ROLLING deployment's ``alarms`` (when its configuration names some) and ``rollback``
    (when it was rolled back: the revision of the deployment that took over)."""
    alarms = shift.alarms_of(body["deploymentConfiguration"])
    triggered = list(dep.get(TRIGGERED) or [])
    if alarms.names:
        body["alarms"] = {
            "status": "DISABLED" if not alarms.enable or dep.get(ROLLBACK_OF) else
            "TRIGGERED" if triggered else "MONITORING" if active else "MONITORING_COMPLETE",
            "alarmNames": list(alarms.names),
            "triggeredAlarmNames": triggered,
        }
    if rolled_back:
        back = next((d for d in deps if d.get("status") == "PRIMARY"), None)
        body["rollback"] = {"reason": dep.get("rolloutStateReason", ""), "startedAt": dep.get("updatedAt"),
                            **({"serviceRevisionArn": revision_arn(config, cluster, service, back["id"])}
                               if back is not None else {})}


def _shown(rec: data.ServiceDeploymentRecord) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in rec.body.items() if k != REVISION}


# -- operations ------------------------------------------------------------------------------
def _arns(params: Mapping[str, Any], key: str) -> list[str]:
    arns = params.get(key)
    if not isinstance(arns, list) or not arns or len(arns) > 20:
        raise InvalidParameterException(f"{key} must list 1 to 20 ARNs.")
    return arns


async def describe_deployments(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    found, failures = [], []
    for arn in _arns(params, "serviceDeploymentArns"):
        rec = data.service_deployment(store, arn)
        if rec is None:
            failures.append({"arn": arn, "reason": "MISSING",
                             "detail": "No service deployment with this ARN."})
        else:
            found.append(_shown(rec))
    return {"serviceDeployments": found, "failures": failures}


async def describe_revisions(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    found, failures = [], []
    for arn in _arns(params, "serviceRevisionArns"):
        rec = data.service_deployment_by_revision(store, arn)
        if rec is None:
            failures.append({"arn": arn, "reason": "MISSING", "detail": "No service revision with this ARN."})
        else:
            found.append(copy.deepcopy(dict(rec.body[REVISION])))
    return {"serviceRevisions": found, "failures": failures}


async def list_deployments(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    from runner.services import service_name

    cluster = clusters.cluster_name(params.get("cluster"))
    if data.cluster(store, cluster) is None:
        raise clusters.ClusterNotFoundException("Cluster not found.")
    name = service_name(params.get("service"))
    if data.service(store, cluster, name) is None:
        raise ServiceNotFoundException("Service not found.")
    wanted = set(params.get("status") or [])
    created = params.get("createdAt") or {}
    out = []
    for rec in data.service_deployments_of(store, cluster, name):
        if wanted and rec.body.get("status") not in wanted:
            continue
        at = rec.created_at
        if (created.get("after") is not None and at < float(created["after"])) or (
                created.get("before") is not None and at > float(created["before"])):
            continue
        brief = {k: rec.body[k] for k in BRIEF if k in rec.body}
        brief["targetServiceRevisionArn"] = rec.revision_arn
        out.append(brief)
    shown, token = page(out, params, InvalidParameterException, default=20, maximum=100)
    answer: dict[str, Any] = {"serviceDeployments": shown}
    if token:
        answer["nextToken"] = token
    return answer


async def _change_shift(store: Store, params: Mapping[str, Any], edit: Any) -> dict[str, Any]:
    """Apply ``edit(state, strategy) -> state`` to the running traffic shift the request's
    ``serviceDeploymentArn`` names (in one transaction with the service row)."""
    arn = params.get("serviceDeploymentArn")
    rec = data.service_deployment(store, arn) if isinstance(arn, str) else None
    if rec is None:
        raise ServiceDeploymentNotFoundException("Service deployment not found.")

    def change(svc: data.Service | None) -> data.Service:
        if svc is None:
            raise ServiceDeploymentNotFoundException("Service deployment not found.")
        deps = copy.deepcopy([dict(d) for d in svc.deployments])
        dep = next((d for d in deps if d["id"].rsplit("/", 1)[-1] == arn.rsplit("/", 1)[-1]), None)
        found = shift_of(dep) if dep is not None else None
        if dep is None or found is None:
            raise InvalidParameterException(
                "Only a running BLUE_GREEN, LINEAR or CANARY service deployment can be stopped or continued.")
        strategy, state = found
        if state.outcome:
            raise InvalidParameterException(f"The service deployment has already ended ({state.outcome}).")
        dep[SHIFT]["state"] = shift.state_json(edit(state, strategy))
        return replace(svc, deployments=tuple(deps))

    await data.modify_service(store, rec.cluster, rec.service, change)
    return {"serviceDeploymentArn": arn}


async def stop(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    stop_type = params.get("stopType") or "ROLLBACK"

    def edit(state: shift.State, strategy: shift.Strategy) -> shift.State:
        return replace(state, stop=stop_type)

    return await _change_shift(store, params, edit)


async def continue_(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    hook_id = params.get("hookId")
    action = params.get("action") or "CONTINUE"

    def edit(state: shift.State, strategy: shift.Strategy) -> shift.State:
        if not state.hook or state.hook != hook_id:
            waiting = f" ({state.hook} is)" if state.hook else ""
            raise InvalidParameterException(
                f"The lifecycle hook {hook_id} is not awaiting action{waiting}.")
        return replace(state, action=action)

    return await _change_shift(store, params, edit)


OPERATIONS = {
    "ListServiceDeployments": list_deployments,
    "DescribeServiceDeployments": describe_deployments,
    "DescribeServiceRevisions": describe_revisions,
    "StopServiceDeployment": stop,
    "ContinueServiceDeployment": continue_,
}
