"""ELBv2's API for Application Load Balancers (AWS Query protocol, served by dockyard.aws).

Load balancers, target groups, listeners and rules are stored by :mod:`edge.data` in their
AWS shape; after each write ``changed()`` is called (the part republishes the edge Envoy's
snapshot). Target health comes from ``health(tg, id, port)`` (the part's prober). Errors are
ELBv2's own (``edge.errors``), checks are pure (``edge.checks``).
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from dockyard.aws.paging import page
from dockyard.aws.protocol import Call
from edge import checks
from edge.data import LB, LISTENER, RULE, TG, Data, Resource
from edge.errors import (
    CertificateNotFound,
    DuplicateListener,
    DuplicateLoadBalancerName,
    DuplicateTargetGroupName,
    InvalidConfigurationRequest,
    InvalidTarget,
    ListenerNotFound,
    LoadBalancerNotFound,
    OperationNotPermitted,
    PriorityInUse,
    ResourceInUse,
    RuleNotFound,
    TargetGroupNotFound,
    TooManyRules,
    TooManyTags,
    ValidationError,
)
from edge.health import Health, describe
from edge.seams import Certificates

__all__ = ["SERVICE", "Elbv2", "forward_groups", "load_balancers_of", "target_health", "with_body"]

SERVICE = "elbv2"
MAX_TAGS = 50
MAX_PAGE = 400  # PageSize's bound in ELBv2's model
_HIDDEN = ("_attrs",)


def _public(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _HIDDEN}


def _tags(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    tags = tuple((t["Key"], t.get("Value", "")) for t in params.get("Tags", []))
    if len(tags) > MAX_TAGS:
        raise TooManyTags(f"A resource can have at most {MAX_TAGS} tags")
    return tags


def _name(name: str, what: str) -> None:
    ok = 1 <= len(name) <= 32 and all(c.isalnum() or c == "-" for c in name)
    if not ok or name.startswith("-") or name.endswith("-") or name.startswith("internal-"):
        raise ValidationError(
            f"{what} name '{name}' must be 1-32 alphanumeric characters or hyphens, not beginning or ending "
            "with a hyphen"
        )


class Elbv2:
    def __init__(
        self,
        data: Data,
        *,
        region: str,
        account: str,
        host: str,
        ports: list[tuple[int, int]],
        changed: Callable[[], None],
        health: Callable[[str, str, int], Health | None],
        draining: Callable[[str], list[tuple[str, int]]],
        certificates: Certificates,
        dns_name: str,
    ) -> None:
        self.data = data
        self.prefix = f"arn:aws:elasticloadbalancing:{region}:{account}:"
        self.host = host
        self.ports = ports
        self.changed = changed
        self.health = health
        self.draining = draining
        self.certificates = certificates
        self.dns_name = dns_name

    def operations(self) -> dict[str, Callable[[Call, dict[str, Any]], Any]]:
        names = [
            "CreateLoadBalancer",
            "DescribeLoadBalancers",
            "DeleteLoadBalancer",
            "DescribeLoadBalancerAttributes",
            "ModifyLoadBalancerAttributes",
            "CreateTargetGroup",
            "DescribeTargetGroups",
            "ModifyTargetGroup",
            "DeleteTargetGroup",
            "DescribeTargetGroupAttributes",
            "ModifyTargetGroupAttributes",
            "RegisterTargets",
            "DeregisterTargets",
            "DescribeTargetHealth",
            "CreateListener",
            "DescribeListeners",
            "ModifyListener",
            "DeleteListener",
            "CreateRule",
            "DescribeRules",
            "ModifyRule",
            "DeleteRule",
            "SetRulePriorities",
            "AddTags",
            "RemoveTags",
            "DescribeTags",
        ]
        return {
            n: getattr(self, "op_" + "".join("_" + c.lower() if c.isupper() else c for c in n)[1:])
            for n in names
        }

    # -- lookups ----------------------------------------------------------------------------

    def _lb(self, arn: str) -> Resource:
        found = self.data.get(arn, LB)
        if found is None:
            raise LoadBalancerNotFound(f"Load balancer '{arn}' not found")
        return found

    def _tg(self, arn: str) -> Resource:
        found = self.data.get(arn, TG)
        if found is None:
            raise TargetGroupNotFound(f"Target groups '{arn}' not found")
        return found

    def _listener(self, arn: str) -> Resource:
        found = self.data.get(arn, LISTENER)
        if found is None:
            raise ListenerNotFound(f"Listener '{arn}' not found")
        return found

    def _rule(self, arn: str) -> Resource:
        found = self.data.get(arn, RULE)
        if found is None:
            raise RuleNotFound(f"One or more rules not found: '{arn}'")
        return found

    def _group_exists(self, arn: str) -> bool:
        return self.data.get(arn, TG) is not None

    def _tg_users(self, tg_arn: str) -> list[str]:
        return load_balancers_of(self.data, tg_arn)

    # -- load balancers ---------------------------------------------------------------------

    async def op_create_load_balancer(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        _name(name, "Load balancer")
        if params.get("Type", "application") != "application":
            raise InvalidConfigurationRequest(
                "Dockyard serves application load balancers only (Type=application)"
            )
        existing = self.data.by_name(LB, name)
        if existing is not None:
            raise DuplicateLoadBalancerName(f"A load balancer with the name '{name}' already exists")
        lb_id = secrets.token_hex(8)
        arn = f"{self.prefix}loadbalancer/app/{name}/{lb_id}"
        body = {
            "LoadBalancerArn": arn,
            "DNSName": self.dns_name,
            "CanonicalHostedZoneId": "Z000DOCKYARD",
            "CreatedTime": time.time(),
            "LoadBalancerName": name,
            "Scheme": params.get("Scheme", "internet-facing"),
            "VpcId": "vpc-dockyard",
            "State": {"Code": "active"},
            "Type": "application",
            "AvailabilityZones": [{"ZoneName": "local", "SubnetId": s} for s in params.get("Subnets", [])],
            "SecurityGroups": params.get("SecurityGroups", []),
            "IpAddressType": params.get("IpAddressType", "ipv4"),
            "_attrs": dict(checks.LB_ATTRIBUTES),
        }
        res = Resource(arn, LB, name, "", body, _tags(params), body["CreatedTime"])
        if not await self.data.put(res, unique_name=True):
            raise DuplicateLoadBalancerName(f"A load balancer with the name '{name}' already exists")
        return {"LoadBalancers": [_public(body)]}

    async def op_describe_load_balancers(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("LoadBalancerArns"):
            found = [self._lb(a) for a in params["LoadBalancerArns"]]
        elif params.get("Names"):
            found = []
            for n in params["Names"]:
                lb = self.data.by_name(LB, n)
                if lb is None:
                    raise LoadBalancerNotFound(f"Load balancers '[{n}]' not found")
                found.append(lb)
        else:
            found = self.data.all(LB)
        return _paged("LoadBalancers", [_public(r.body) for r in found], params)

    async def op_delete_load_balancer(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        lb = self.data.get(params["LoadBalancerArn"], LB)
        if lb is None:  # as AWS: deleting one that is gone succeeds
            return {}
        if lb.body["_attrs"].get("deletion_protection.enabled") == "true":
            raise OperationNotPermitted(
                f"Load balancer '{lb.arn}' cannot be deleted because deletion protection is enabled"
            )
        await self.data.delete(lb.arn)
        self.changed()
        return {}

    async def op_describe_load_balancer_attributes(
        self, call: Call, params: dict[str, Any]
    ) -> dict[str, Any]:
        lb = self._lb(params["LoadBalancerArn"])
        return {"Attributes": [{"Key": k, "Value": v} for k, v in sorted(lb.body["_attrs"].items())]}

    async def op_modify_load_balancer_attributes(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        lb = self._lb(params["LoadBalancerArn"])
        attrs = checks.attributes(lb.body["_attrs"], params["Attributes"], checks.LB_ATTRIBUTES)
        await self.data.put(_with(lb, _attrs=attrs))
        self.changed()
        return {"Attributes": [{"Key": k, "Value": v} for k, v in sorted(attrs.items())]}

    # -- target groups ----------------------------------------------------------------------

    async def op_create_target_group(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        _name(name, "Target group")
        kind = params.get("TargetType", "instance")
        if kind not in ("ip", "instance"):
            raise InvalidConfigurationRequest(
                f"Target type '{kind}' is not supported by Dockyard (ip, instance)"
            )
        protocol = params.get("Protocol")
        if protocol not in ("HTTP", "HTTPS"):
            raise ValidationError(
                f"Protocol '{protocol}' is not supported for an application load balancer's "
                "target group (HTTP, HTTPS)"
            )
        version = params.get("ProtocolVersion", "HTTP1")
        if version not in ("HTTP1", "HTTP2", "GRPC"):
            raise ValidationError(f"Protocol version '{version}' is not valid (HTTP1, HTTP2, GRPC)")
        if "Port" not in params:
            raise ValidationError("A port must be specified")
        matcher = params.get("Matcher") or ({"GrpcCode": "12"} if version == "GRPC" else {"HttpCode": "200"})
        tg_id = secrets.token_hex(8)
        arn = f"{self.prefix}targetgroup/{name}/{tg_id}"
        body = {
            "TargetGroupArn": arn,
            "TargetGroupName": name,
            "Protocol": protocol,
            "Port": params["Port"],
            "VpcId": params.get("VpcId", "vpc-dockyard"),
            "HealthCheckProtocol": params.get("HealthCheckProtocol", protocol),
            "HealthCheckPort": params.get("HealthCheckPort", "traffic-port"),
            "HealthCheckEnabled": params.get("HealthCheckEnabled", True),
            "HealthCheckIntervalSeconds": params.get("HealthCheckIntervalSeconds", 30),
            "HealthCheckTimeoutSeconds": params.get("HealthCheckTimeoutSeconds", 5),
            "HealthyThresholdCount": params.get("HealthyThresholdCount", 5),
            "UnhealthyThresholdCount": params.get("UnhealthyThresholdCount", 2),
            "HealthCheckPath": params.get(
                "HealthCheckPath", "/AWS.ALB/healthcheck" if version == "GRPC" else "/"
            ),
            "Matcher": matcher,
            "TargetType": kind,
            "ProtocolVersion": version,
            "IpAddressType": params.get("IpAddressType", "ipv4"),
            "_attrs": dict(checks.TG_ATTRIBUTES),
        }
        checks.check_health_check(body)
        same = self.data.by_name(TG, name)
        if same is not None:
            raise DuplicateTargetGroupName(f"A target group with the same name '{name}' exists")
        res = Resource(arn, TG, name, "", body, _tags(params), time.time())
        if not await self.data.put(res, unique_name=True):
            raise DuplicateTargetGroupName(f"A target group with the same name '{name}' exists")
        return {"TargetGroups": [self._tg_view(res)]}

    def _tg_view(self, tg: Resource) -> dict[str, Any]:
        return {**_public(tg.body), "LoadBalancerArns": self._tg_users(tg.arn)}

    async def op_describe_target_groups(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("TargetGroupArns"):
            found = [self._tg(a) for a in params["TargetGroupArns"]]
        elif params.get("Names"):
            found = []
            for n in params["Names"]:
                tg = self.data.by_name(TG, n)
                if tg is None:
                    raise TargetGroupNotFound(f"One or more target groups not found: '{n}'")
                found.append(tg)
        else:
            found = self.data.all(TG)
        if params.get("LoadBalancerArn"):
            self._lb(params["LoadBalancerArn"])
            found = [t for t in found if params["LoadBalancerArn"] in self._tg_users(t.arn)]
        return _paged("TargetGroups", [self._tg_view(t) for t in found], params)

    async def op_modify_target_group(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        tg = self._tg(params["TargetGroupArn"])
        keys = (
            "HealthCheckProtocol",
            "HealthCheckPort",
            "HealthCheckPath",
            "HealthCheckEnabled",
            "HealthCheckIntervalSeconds",
            "HealthCheckTimeoutSeconds",
            "HealthyThresholdCount",
            "UnhealthyThresholdCount",
            "Matcher",
        )
        body = {**tg.body, **{k: params[k] for k in keys if k in params}}
        checks.check_health_check(body)
        res = _with(tg, **{k: body[k] for k in keys})
        await self.data.put(res)
        self.changed()
        return {"TargetGroups": [self._tg_view(res)]}

    async def op_delete_target_group(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        tg = self.data.get(params["TargetGroupArn"], TG)
        if tg is None:
            return {}
        users = self._tg_users(tg.arn)
        if users:
            raise ResourceInUse(f"Target group '{tg.arn}' is currently in use by a listener or a rule")
        await self.data.delete(tg.arn)
        self.changed()
        return {}

    async def op_describe_target_group_attributes(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        tg = self._tg(params["TargetGroupArn"])
        return {"Attributes": [{"Key": k, "Value": v} for k, v in sorted(tg.body["_attrs"].items())]}

    async def op_modify_target_group_attributes(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        tg = self._tg(params["TargetGroupArn"])
        attrs = checks.attributes(tg.body["_attrs"], params["Attributes"], checks.TG_ATTRIBUTES)
        await self.data.put(_with(tg, _attrs=attrs))
        self.changed()
        return {"Attributes": [{"Key": k, "Value": v} for k, v in sorted(attrs.items())]}

    # -- targets ----------------------------------------------------------------------------

    def _targets(self, tg: Resource, given: list[dict[str, Any]]) -> list[tuple[str, int]]:
        out = []
        for t in given:
            port = int(t.get("Port", tg.body["Port"]))
            if not 1 <= port <= 65535:
                raise ValidationError(f"Port {port} is not in 1-65535")
            if tg.body["TargetType"] == "ip":
                try:
                    ipaddress.IPv4Address(t["Id"])
                except ValueError:
                    raise InvalidTarget(f"The IP address '{t['Id']}' is not a valid IPv4 address") from None
            elif not t["Id"].startswith("i-"):
                raise InvalidTarget(f"The following targets are not valid instances: '{t['Id']}'")
            out.append((t["Id"], port))
        return out

    async def op_register_targets(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        tg = self._tg(params["TargetGroupArn"])
        await self.data.register(tg.arn, self._targets(tg, params["Targets"]))
        self.changed()
        return {}

    async def op_deregister_targets(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        tg = self._tg(params["TargetGroupArn"])
        targets = self._targets(tg, params["Targets"])
        registered = {(t.id, t.port) for t in self.data.targets(tg.arn)}
        missing = [t for t in targets if t not in registered]
        if missing:
            raise InvalidTarget(
                f"The following targets are not registered in target group '{tg.arn}': "
                f"{', '.join(f'{i}:{p}' for i, p in missing)}"
            )
        await self.data.deregister(tg.arn, targets)
        self.changed()
        return {}

    async def op_describe_target_health(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        tg = self._tg(params["TargetGroupArn"])
        registered = [(t.id, t.port) for t in self.data.targets(tg.arn)]
        draining = self.draining(tg.arn)
        asked = self._targets(tg, params["Targets"]) if params.get("Targets") else registered + draining
        used = bool(self._tg_users(tg.arn))
        out = []
        for id_, port in asked:
            health = target_health(
                tg.body,
                registered=(id_, port) in registered,
                draining=(id_, port) in draining,
                used=used,
                health=self.health(tg.arn, id_, port),
            )
            hc_port = tg.body["HealthCheckPort"]
            out.append(
                {
                    "Target": {"Id": id_, "Port": port},
                    "HealthCheckPort": str(port) if hc_port == "traffic-port" else hc_port,
                    "TargetHealth": health,
                }
            )
        return {"TargetHealthDescriptions": out}

    # -- listeners --------------------------------------------------------------------------

    def _check_listener(
        self,
        lb: Resource,
        port: int,
        protocol: str,
        certs: list[dict[str, Any]],
        actions: list[dict[str, Any]],
        arn: str = "",
    ) -> None:
        if protocol not in ("HTTP", "HTTPS"):
            raise InvalidConfigurationRequest(
                f"Protocol '{protocol}' is not supported for application load balancers (HTTP, HTTPS)"
            )
        if not checks.port_allowed(self.ports, port):
            allowed = ",".join(f"{a}-{b}" if a != b else str(a) for a, b in self.ports)
            raise InvalidConfigurationRequest(
                f"Listener port {port} is outside the ports Dockyard's load "
                f"balancers may use ({allowed}; the edge_ports setting)"
            )
        for other in self.data.all(LISTENER):
            if other.body["Port"] == port and other.arn != arn:
                if other.parent == lb.arn:
                    raise DuplicateListener(f"A listener already exists on port {port}")
                raise InvalidConfigurationRequest(f"Port {port} is taken by another load balancer's listener")
        if not arn or self.data.get(arn, LISTENER).body["Port"] != port:  # type: ignore[union-attr]
            if not _port_free(self.host, port):
                raise InvalidConfigurationRequest(f"Port {port} is in use on {self.host}")
        if protocol == "HTTPS":
            if not certs:
                raise ValidationError("A certificate must be specified for HTTPS listeners")
            for c in certs:
                if self.certificates.pem(c.get("CertificateArn", "")) is None:
                    raise CertificateNotFound(f"Certificate '{c.get('CertificateArn')}' not found")
        checks.check_actions(actions, self._group_exists)

    async def op_create_listener(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        lb = self._lb(params["LoadBalancerArn"])
        port, protocol = params.get("Port"), params.get("Protocol")
        if port is None or protocol is None:
            raise ValidationError("A listener needs a port and a protocol")
        certs = params.get("Certificates", [])
        self._check_listener(lb, port, protocol, certs, params["DefaultActions"])
        lb_path = lb.arn.split(":loadbalancer/", 1)[1]
        arn = f"{self.prefix}listener/{lb_path}/{secrets.token_hex(8)}"
        body = {
            "ListenerArn": arn,
            "LoadBalancerArn": lb.arn,
            "Port": port,
            "Protocol": protocol,
            "Certificates": certs,
            "DefaultActions": params["DefaultActions"],
        }
        if protocol == "HTTPS":
            body["SslPolicy"] = params.get("SslPolicy", "ELBSecurityPolicy-2016-08")
        res = Resource(arn, LISTENER, arn, lb.arn, body, _tags(params), time.time())
        await self.data.put(res)
        self.changed()
        return {"Listeners": [body]}

    async def op_describe_listeners(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("ListenerArns"):
            found = [self._listener(a) for a in params["ListenerArns"]]
        elif params.get("LoadBalancerArn"):
            found = self.data.all(LISTENER, self._lb(params["LoadBalancerArn"]).arn)
        else:
            raise ValidationError("A load balancer ARN or listener ARNs must be specified")
        return _paged("Listeners", [r.body for r in found], params)

    async def op_modify_listener(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        lst = self._listener(params["ListenerArn"])
        body = dict(lst.body)
        for k in ("Port", "Protocol", "Certificates", "DefaultActions", "SslPolicy"):
            if k in params:
                body[k] = params[k]
        if body["Protocol"] == "HTTP":
            body.pop("SslPolicy", None)
            body["Certificates"] = []
        self._check_listener(
            self._lb(lst.parent),
            body["Port"],
            body["Protocol"],
            body.get("Certificates", []),
            body["DefaultActions"],
            arn=lst.arn,
        )
        await self.data.put(with_body(lst, body))
        self.changed()
        return {"Listeners": [body]}

    async def op_delete_listener(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        lst = self._listener(params["ListenerArn"])
        await self.data.delete(lst.arn)
        self.changed()
        return {}

    # -- rules ------------------------------------------------------------------------------

    def _priorities(self, listener: str, skip: set[str] = frozenset()) -> set[int]:  # type: ignore[assignment]
        return {int(r.body["Priority"]) for r in self.data.all(RULE, listener) if r.arn not in skip}

    async def op_create_rule(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        lst = self._listener(params["ListenerArn"])
        priority = params["Priority"]
        if not 1 <= priority <= 50000:
            raise ValidationError(f"Priority {priority} must be between 1 and 50000")
        checks.check_conditions(params["Conditions"])
        checks.check_actions(params["Actions"], self._group_exists)
        if len(self.data.all(RULE, lst.arn)) >= 100:
            raise TooManyRules("A listener can have at most 100 rules")
        if priority in self._priorities(lst.arn):
            raise PriorityInUse(f"Priority '{priority}' is currently in use")
        tail = lst.arn.split(":listener/", 1)[1]
        arn = f"{self.prefix}listener-rule/{tail}/{secrets.token_hex(8)}"
        body = {
            "RuleArn": arn,
            "Priority": str(priority),
            "Conditions": params["Conditions"],
            "Actions": params["Actions"],
            "IsDefault": False,
        }
        await self.data.put(Resource(arn, RULE, arn, lst.arn, body, _tags(params), time.time()))
        self.changed()
        return {"Rules": [body]}

    def _default_rule(self, lst: Resource) -> dict[str, Any]:
        tail = lst.arn.split(":listener/", 1)[1]
        return {
            "RuleArn": f"{self.prefix}listener-rule/{tail}/default",
            "Priority": "default",
            "Conditions": [],
            "Actions": lst.body["DefaultActions"],
            "IsDefault": True,
        }

    async def op_describe_rules(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("RuleArns"):
            return _paged("Rules", [self._rule(a).body for a in params["RuleArns"]], params)
        if not params.get("ListenerArn"):
            raise ValidationError("A listener ARN or rule ARNs must be specified")
        lst = self._listener(params["ListenerArn"])
        rules = sorted(self.data.all(RULE, lst.arn), key=lambda r: int(r.body["Priority"]))
        return _paged("Rules", [r.body for r in rules] + [self._default_rule(lst)], params)

    async def op_modify_rule(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        if params["RuleArn"].endswith("/default"):
            raise OperationNotPermitted(
                "The default rule cannot be modified; modify the listener's default actions"
            )
        rule = self._rule(params["RuleArn"])
        body = dict(rule.body)
        if "Conditions" in params:
            checks.check_conditions(params["Conditions"])
            body["Conditions"] = params["Conditions"]
        if "Actions" in params:
            checks.check_actions(params["Actions"], self._group_exists)
            body["Actions"] = params["Actions"]
        await self.data.put(with_body(rule, body))
        self.changed()
        return {"Rules": [body]}

    async def op_delete_rule(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        if params["RuleArn"].endswith("/default"):
            raise OperationNotPermitted("The default rule cannot be deleted")
        rule = self._rule(params["RuleArn"])
        await self.data.delete(rule.arn)
        self.changed()
        return {}

    async def op_set_rule_priorities(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        asked = [(self._rule(p["RuleArn"]), p["Priority"]) for p in params["RulePriorities"]]
        for _, priority in asked:
            if not 1 <= priority <= 50000:
                raise ValidationError(f"Priority {priority} must be between 1 and 50000")
        moved = {r.arn for r, _ in asked}
        by_listener: dict[str, list[int]] = {}
        for rule, priority in asked:
            by_listener.setdefault(rule.parent, []).append(priority)
        for listener, wanted in by_listener.items():
            if len(set(wanted)) != len(wanted) or set(wanted) & self._priorities(listener, moved):
                raise PriorityInUse("One or more priorities are currently in use")
        changed = [with_body(r, {**r.body, "Priority": str(p)}) for r, p in asked]
        await self.data.put_many(changed)
        self.changed()
        return {"Rules": [r.body for r in changed]}

    # -- tags -------------------------------------------------------------------------------

    def _tagged(self, arn: str) -> Resource:
        found = self.data.get(arn)
        if found is None:
            kind = arn.split(":", 5)[-1].split("/", 1)[0]
            raise {
                "loadbalancer": LoadBalancerNotFound,
                "targetgroup": TargetGroupNotFound,
                "listener": ListenerNotFound,
                "listener-rule": RuleNotFound,
            }.get(kind, ValidationError)(f"Resource '{arn}' not found")
        return found

    async def op_add_tags(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        found = [self._tagged(a) for a in params["ResourceArns"]]
        new = dict(_tags(params))
        changed = []
        for res in found:
            tags = {**dict(res.tags), **new}
            if len(tags) > MAX_TAGS:
                raise TooManyTags(f"A resource can have at most {MAX_TAGS} tags")
            changed.append(
                Resource(
                    res.arn, res.kind, res.name, res.parent, res.body, tuple(tags.items()), res.created_at
                )
            )
        await self.data.put_many(changed)
        return {}

    async def op_remove_tags(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        found = [self._tagged(a) for a in params["ResourceArns"]]
        drop = set(params["TagKeys"])
        await self.data.put_many(
            [
                Resource(
                    r.arn,
                    r.kind,
                    r.name,
                    r.parent,
                    r.body,
                    tuple((k, v) for k, v in r.tags if k not in drop),
                    r.created_at,
                )
                for r in found
            ]
        )
        return {}

    async def op_describe_tags(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        found = [self._tagged(a) for a in params["ResourceArns"]]
        return {
            "TagDescriptions": [
                {"ResourceArn": r.arn, "Tags": [{"Key": k, "Value": v} for k, v in r.tags]} for r in found
            ]
        }


def target_health(
    tg: dict[str, Any], *, registered: bool, draining: bool, used: bool, health: Health | None
) -> dict[str, str]:
    """ELBv2's ``TargetHealth`` of one target of the group whose description is ``tg``."""
    if draining and not registered:
        return {
            "State": "draining",
            "Reason": "Target.DeregistrationInProgress",
            "Description": "Target deregistration is in progress",
        }
    if not registered:
        return {
            "State": "unused",
            "Reason": "Target.NotRegistered",
            "Description": "Target is not registered to the target group",
        }
    if not used:
        return {
            "State": "unused",
            "Reason": "Target.NotInUse",
            "Description": "Target group is not configured to receive traffic from the load balancer",
        }
    if not tg.get("HealthCheckEnabled", True):
        return {
            "State": "unavailable",
            "Reason": "Target.HealthCheckDisabled",
            "Description": "Health checks are disabled",
        }
    return describe(health or Health())


def load_balancers_of(data: Data, tg_arn: str) -> list[str]:
    """The load balancers whose listeners or rules forward to ``tg_arn``."""
    lbs = set()
    for lst in data.all(LISTENER):
        actions = [lst.body["DefaultActions"]] + [r.body["Actions"] for r in data.all(RULE, lst.arn)]
        if any(tg_arn in forward_groups(a) for a in actions):
            lbs.add(lst.parent)
    return sorted(lbs)


def _paged(key: str, items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """One page of a Describe answer (``Marker``/``PageSize``, at most 400, as the model says);
    ``NextMarker`` when more follow."""
    chunk, nxt = page(items, params, ValidationError, default=MAX_PAGE, maximum=MAX_PAGE,
                      token_key="Marker", max_key="PageSize")
    out: dict[str, Any] = {key: chunk}
    if nxt is not None:
        out["NextMarker"] = nxt
    return out


def forward_groups(actions: list[dict[str, Any]]) -> set[str]:
    """The target group ARNs the actions forward to (one group or weighted ones)."""
    out = set()
    for act in actions:
        if act.get("TargetGroupArn"):
            out.add(act["TargetGroupArn"])
        for g in (act.get("ForwardConfig") or {}).get("TargetGroups", []):
            out.add(g["TargetGroupArn"])
    return out


def _with(res: Resource, **changes: Any) -> Resource:
    return with_body(res, {**res.body, **changes})


def with_body(res: Resource, body: dict[str, Any]) -> Resource:
    """``res`` with ``body`` (what a Modify* stores)."""
    return Resource(res.arn, res.kind, res.name, res.parent, body, res.tags, res.created_at)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
