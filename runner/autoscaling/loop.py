"""The autoscaling loop: every ``autoscaling_interval`` seconds, for each scalable target,

1. the scheduled actions that came due (:func:`runner.autoscaling.schedule.next_after` of their
   last run, within ``StartTime``/``EndTime``, unless ``ScheduledScalingSuspended``) set its
   ``MinCapacity``/``MaxCapacity``, and the service's desired count is brought inside them;
2. its policies are judged by :func:`runner.autoscaling.decide.decide`: target tracking over
   the last complete periods of their metrics (``autoscaling_period`` seconds each, aligned to
   multiples of the period as CloudWatch's are), read through ``metrics``
   (:class:`runner.seams.MetricSource`; without one, only scheduled actions and bounds act);
   a step scaling policy while an alarm that names its ARN in ``AlarmActions`` is in ALARM
   (``alarms``, :class:`runner.seams.AlarmStates`: CloudWatch invokes the action as long as the
   alarm stays there, the policy's ``Cooldown`` paces it), on the breach of the datapoints that
   alarm judged last;
3. a new desired count is set with UpdateService's own path, and every change (or a wanted one
   held back) is a scaling activity worded as AWS words it.

When each target last scaled out and in lives in memory: after a restart the cooldowns start
afresh. The loop holds no SQL (:mod:`runner.data`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from dockyard.config import Config
from dockyard.store import Store
from runner import data, services
from runner.autoscaling import decide, schedule
from runner.seams import AlarmStates, MetricSource

__all__ = ["Scaler", "install", "metric_query"]

log = logging.getLogger("dockyard.runner.autoscaling")

_PREDEFINED = {
    "ECSServiceAverageCPUUtilization": ("AWS/ECS", "CPUUtilization"),
    "ECSServiceAverageMemoryUtilization": ("AWS/ECS", "MemoryUtilization"),
    "ALBRequestCountPerTarget": ("AWS/ApplicationELB", "RequestCountPerTarget"),
}


def metric_query(resource: str, config: dict[str, Any]) -> tuple[str, str, dict[str, str], str]:
    """(namespace, metric name, dimensions, statistic) a target tracking policy follows (pure)."""
    _, cluster, service = resource.split("/")
    pre = config.get("PredefinedMetricSpecification")
    if pre:
        namespace, name = _PREDEFINED[pre["PredefinedMetricType"]]
        if pre["PredefinedMetricType"] == "ALBRequestCountPerTarget":
            # ResourceLabel app/<lb>/<id>/targetgroup/<tg>/<id>: the TargetGroup dimension is its
            # targetgroup/<tg>/<id> part
            label = str(pre.get("ResourceLabel", ""))
            at = label.find("targetgroup/")
            return namespace, name, {"TargetGroup": label[at:] if at >= 0 else label}, "Sum"
        return namespace, name, {"ClusterName": cluster, "ServiceName": service}, "Average"
    custom = config.get("CustomizedMetricSpecification") or {}
    dims = {d["Name"]: d["Value"] for d in custom.get("Dimensions") or []}
    return custom.get("Namespace", ""), custom.get("MetricName", ""), dims, custom.get("Statistic", "Average")


class Scaler:
    def __init__(self, store: Store, config: Config, metrics: MetricSource | None = None,
                 alarms: AlarmStates | None = None) -> None:
        self.store = store
        self.config = config
        self.metrics = metrics
        self.alarms = alarms
        # per registration (resource, CreationTime): a target registered again starts afresh
        self.history: dict[tuple[str, float], decide.History] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="runner-autoscaling")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.step(time.time())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("autoscaling pass failed")
            await asyncio.sleep(max(0.2, self.config.autoscaling_interval))

    async def step(self, now: float) -> None:
        targets = data.scalable_targets(self.store)
        registered = {(t.resource, t.created_at) for t in targets}
        self.history = {k: h for k, h in self.history.items() if k in registered}
        for target in targets:
            try:
                await self._one(target, now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("autoscaling failed", extra={"resource": target.resource})

    async def _activity(self, resource: str, description: str, cause: str, now: float,
                        status: str = "Successful", not_scaled: tuple[str, ...] = ()) -> None:
        async with self.store.transaction() as tx:
            data.add_scaling_activity(tx, data.ScalingActivity(
                str(uuid.uuid4()), resource, description, cause, now, time.time(), status, "", not_scaled))

    async def _scheduled(self, target: data.ScalableTarget, now: float) -> data.ScalableTarget:
        if target.suspended.get("ScheduledScalingSuspended"):
            return target
        for action in data.scheduled_actions(self.store, target.resource):
            if action.end_time is not None and now > action.end_time:
                continue
            since = action.last_run if action.last_run is not None else action.created_at
            since = max(since, action.start_time or since)
            try:
                sched = schedule.parse(action.expression, action.timezone)
            except ValueError:
                continue
            due = schedule.next_after(sched, since, anchor=action.start_time or action.created_at)
            if due is None or due > now:
                continue
            low = action.action.get("MinCapacity", target.min_capacity)
            high = action.action.get("MaxCapacity", target.max_capacity)
            target = replace(target, min_capacity=int(low), max_capacity=int(high))
            async with self.store.transaction() as tx:
                data.put_scalable_target(tx, target)
                data.put_scheduled_action(tx, replace(action, last_run=now))
            parts = [f"min capacity to {low}" if "MinCapacity" in action.action else "",
                     f"max capacity to {high}" if "MaxCapacity" in action.action else ""]
            await self._activity(target.resource, "Setting " + " and ".join(p for p in parts if p),
                                 f"scheduled action name {action.name} was triggered", now)
        return target

    async def _points(
        self, resource: str, policy: data.ScalingPolicy, now: float, count: int
    ) -> list[float | None]:
        if self.metrics is None:
            return []
        namespace, name, dims, stat = metric_query(resource, dict(policy.config))
        period = self.config.autoscaling_period
        end = now // period * period  # the last complete period ends there (periods align, as AWS's do)
        return list(await self.metrics.points(namespace, name, dims, stat, period, end - count * period, end))

    def _step(self, policy: data.ScalingPolicy) -> decide.StepScaling | None:
        """The step policy as :mod:`runner.autoscaling.decide` judges it, when an alarm naming
        it is in ALARM (the first of them); None otherwise."""
        if self.alarms is None:
            return None
        firing = list(self.alarms.firing(policy.arn))
        if not firing:
            return None
        alarm, cfg = firing[0], policy.config
        value = decide.breach(list(alarm.datapoints), str(cfg.get("MetricAggregationType") or "Average"),
                              alarm.threshold)
        steps = tuple(decide.Step(int(s["ScalingAdjustment"]), s.get("MetricIntervalLowerBound"),
                                  s.get("MetricIntervalUpperBound")) for s in cfg["StepAdjustments"])
        return decide.StepScaling(policy.name, alarm.name, alarm.threshold, value, steps,
                                  str(cfg["AdjustmentType"]), int(cfg.get("MinAdjustmentMagnitude") or 0),
                                  float(cfg.get("Cooldown", 300)))

    async def _one(self, target: data.ScalableTarget, now: float) -> None:
        target = await self._scheduled(target, now)
        _, cluster, name = target.resource.split("/")
        svc = data.service(self.store, cluster, name)
        if svc is None or svc.status != "ACTIVE":
            return
        capacity = int(svc.spec.get("desiredCount", 0))
        view = decide.Target(target.resource, capacity, target.min_capacity, target.max_capacity,
                             bool(target.suspended.get("DynamicScalingOutSuspended")),
                             bool(target.suspended.get("DynamicScalingInSuspended")))
        tracking, steps = [], []
        for p in data.scaling_policies(self.store, target.resource):
            if p.type == "StepScaling":
                found = self._step(p)
                if found is not None:
                    steps.append(found)
                continue
            cfg = p.config
            points = await self._points(target.resource, p, now, decide.LOW_POINTS)
            tracking.append(decide.TargetTracking(
                p.name, float(cfg["TargetValue"]), points, float(cfg.get("ScaleOutCooldown", 300)),
                float(cfg.get("ScaleInCooldown", 300)), bool(cfg.get("DisableScaleIn"))))
        history = self.history.get((target.resource, target.created_at), decide.History())
        verdict = decide.decide(view, tracking, steps, history, now)
        if verdict.desired == capacity:
            return
        await services.update(self.store, self.config, {"cluster": cluster, "service": name,
                                                        "desiredCount": verdict.desired})
        if not verdict.policy:
            pass  # the bounds moved it (MinCapacity/MaxCapacity): no policy's cooldown starts
        elif verdict.direction == "out":
            self.history[(target.resource, target.created_at)] = replace(
                history, last_out_at=now, last_out_to=verdict.desired)
        else:
            self.history[(target.resource, target.created_at)] = replace(history, last_in_at=now)
        await self._activity(target.resource, f"Setting desired count to {verdict.desired}.", verdict.cause,
                             now)


def install(platform: Any, metrics: MetricSource | None = None, alarms: AlarmStates | None = None) -> Scaler:
    scaler = Scaler(platform.store, platform.config, metrics, alarms)

    async def serve(p: Any) -> AsyncIterator[None]:
        await scaler.start()
        try:
            yield
        finally:
            await scaler.stop()

    platform.contexts.append(serve)
    return scaler
