"""The edge's side of ECS services behind target groups (``runner.seams.TargetGroups``).

The runner registers a service's tasks here as they become RUNNING (and healthy) and
deregisters them before they stop; this module writes the same state RegisterTargets and
DeregisterTargets write (:mod:`edge.data`), then republishes the edge Envoy's configuration
(:meth:`edge.part.Edge.refresh`): a new target is probed and gets traffic once healthy, a
deregistered one leaves Envoy's endpoints at once and drains for the group's
``deregistration_delay.timeout_seconds``. Health reads are what DescribeTargetHealth answers
(:func:`edge.elbv2.target_health`).

It is also ``runner.seams.ListenerRules``: a traffic-shifting deployment behind a listener
rule (``advancedConfiguration``) reads the groups the rule forwards to and sets the weights of
its forward action, as ModifyRule does (:meth:`edge.elbv2.Elbv2.op_modify_rule`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edge.data import RULE, TG, Data
from edge.elbv2 import forward_groups, load_balancers_of, target_health, with_body
from edge.health import Health

__all__ = ["Group", "ServiceTargets"]


@dataclass(frozen=True)
class Group:
    """A target group as ``runner.seams.TargetGroup``."""

    arn: str
    target_type: str
    deregistration_delay: float
    load_balancers: tuple[str, ...]


@dataclass
class ServiceTargets:
    data: Data
    changed: Callable[[], None]
    health_of: Callable[[str, str, int], Health | None]
    draining_of: Callable[[str], list[tuple[str, int]]]

    def group(self, arn: str) -> Group | None:
        tg = self.data.get(arn, TG)
        if tg is None:
            return None
        delay = float(tg.body["_attrs"]["deregistration_delay.timeout_seconds"])
        return Group(tg.arn, tg.body["TargetType"], delay, tuple(load_balancers_of(self.data, tg.arn)))

    async def register(self, arn: str, target: tuple[str, int]) -> None:
        if self.data.get(arn, TG) is None:
            raise LookupError(f"target group {arn} not found")
        await self.data.register(arn, [target])
        self.changed()

    async def deregister(self, arn: str, target: tuple[str, int]) -> None:
        if self.data.get(arn, TG) is None:
            return
        await self.data.deregister(arn, [target])
        self.changed()

    def health(self, arn: str, target: tuple[str, int]) -> tuple[str, str]:
        tg = self.data.get(arn, TG)
        if tg is None:
            return "unused", "Target group not found"
        registered = target in {(t.id, t.port) for t in self.data.targets(arn)}
        out = target_health(
            tg.body,
            registered=registered,
            draining=target in self.draining_of(arn),
            used=bool(load_balancers_of(self.data, arn)),
            health=self.health_of(arn, *target),
        )
        return out["State"], out.get("Description", "")

    # -- runner.seams.ListenerRules ------------------------------------------------------------
    def forwards(self, rule_arn: str) -> tuple[str, ...] | None:
        rule = self.data.get(rule_arn, RULE)
        if rule is None:
            return None
        forwards = [a for a in rule.body.get("Actions") or [] if a.get("Type") == "forward"]
        return tuple(sorted(forward_groups(forwards)))

    async def set_weights(self, rule_arn: str, weights: Mapping[str, int]) -> None:
        rule = self.data.get(rule_arn, RULE)
        if rule is None:
            raise LookupError(f"rule {rule_arn} not found")
        actions = []
        for act in rule.body.get("Actions") or []:
            if act.get("Type") == "forward":
                act = {k: v for k, v in act.items() if k != "TargetGroupArn"}
                cfg = dict(act.get("ForwardConfig") or {})
                cfg["TargetGroups"] = [{"TargetGroupArn": a, "Weight": int(w)} for a, w in weights.items()]
                act["ForwardConfig"] = cfg
            actions.append(act)
        await self.data.put(with_body(rule, {**rule.body, "Actions": actions}))
        self.changed()
