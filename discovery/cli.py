"""``dockyard discovery namespaces|services|instances`` (tables or ``--json``) and ``watch``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dockyard.aws.protocol import CLOUDMAP


def _all(client: Any, operation: str, key: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every page of a Cloud Map list operation."""
    out: list[dict[str, Any]] = []
    params = dict(params or {})
    while True:
        page = client.call(CLOUDMAP, operation, params)
        out.extend(page.get(key, []))
        if not page.get("NextToken"):
            return out
        params["NextToken"] = page["NextToken"]


def _namespace_id(client: Any, name_or_id: str, ctx: Any) -> str:
    for ns in _all(client, "ListNamespaces", "Namespaces"):
        if name_or_id in (ns["Id"], ns["Name"], ns["Arn"]):
            return str(ns["Id"])
    raise ctx.UserError(f"no namespace {name_or_id}")


def add_commands(sub: Any, ctx: Any) -> None:
    """Add this part's subcommands to the ``dockyard`` parser."""
    disc = sub.add_parser("discovery", help="namespaces, services and instances (Cloud Map)")
    acts = disc.add_subparsers(dest="discovery_command", required=True, metavar="ACTION")

    def namespaces(args: argparse.Namespace) -> int:
        rows = [
            {"id": n["Id"], "name": n["Name"], "type": n["Type"], "services": n.get("ServiceCount", 0)}
            for n in _all(ctx.client(args), "ListNamespaces", "Namespaces")
        ]
        ctx.emit(args, rows, ["id", "name", "type", "services"])
        return 0

    def services(args: argparse.Namespace) -> int:
        client = ctx.client(args)
        names = {n["Id"]: n["Name"] for n in _all(client, "ListNamespaces", "Namespaces")}
        params: dict[str, Any] = {}
        if args.namespace:
            ns_id = _namespace_id(client, args.namespace, ctx)
            params["Filters"] = [{"Name": "NAMESPACE_ID", "Values": [ns_id], "Condition": "EQ"}]
        rows = []
        for s in _all(client, "ListServices", "Services", params):
            dns_records = s.get("DnsConfig", {}).get("DnsRecords", [])
            records = ",".join(f"{r['Type']}:{r['TTL']}" for r in dns_records)
            health = s.get("HealthCheckConfig", {}).get("Type") or (
                "CUSTOM" if "HealthCheckCustomConfig" in s else "")
            rows.append({"id": s["Id"], "name": s["Name"], "namespace": names.get(s["NamespaceId"], ""),
                         "instances": s.get("InstanceCount", 0), "records": records, "health_check": health})
        ctx.emit(args, rows, ["id", "name", "namespace", "instances", "records", "health_check"])
        return 0

    def instances(args: argparse.Namespace) -> int:
        client = ctx.client(args)
        service_id = args.service
        if not service_id.startswith("srv-"):
            matches = [s for s in _all(client, "ListServices", "Services") if s["Name"] == service_id]
            if args.namespace:
                ns_id = _namespace_id(client, args.namespace, ctx)
                matches = [s for s in matches if s["NamespaceId"] == ns_id]
            if len(matches) != 1:
                raise ctx.UserError(
                    f"no service {service_id}" if not matches else
                    f"{len(matches)} services are named {service_id}: pass --namespace or the srv- id")
            service_id = matches[0]["Id"]
        listed = _all(client, "ListInstances", "Instances", {"ServiceId": service_id})
        health = _all_health(client, service_id)
        rows = []
        for i in listed:
            a = i.get("Attributes", {})
            rows.append({
                "id": i["Id"], "ipv4": a.get("AWS_INSTANCE_IPV4", ""), "ipv6": a.get("AWS_INSTANCE_IPV6", ""),
                "port": a.get("AWS_INSTANCE_PORT", ""), "health": health.get(i["Id"], "UNKNOWN"),
                "attributes": ",".join(f"{k}={v}" for k, v in sorted(a.items())
                                       if not k.startswith("AWS_INSTANCE_")),
            })
        ctx.emit(args, rows, ["id", "ipv4", "ipv6", "port", "health", "attributes"])
        return 0

    def watch(args: argparse.Namespace) -> int:
        client = ctx.client(args)
        params: dict[str, Any] = {"Since": args.since, "TimeoutSeconds": 20}
        if args.service:
            if not args.namespace:
                raise ctx.UserError("--service needs --namespace (its name)")
            params.update(NamespaceName=args.namespace, ServiceName=args.service)
        while True:
            out = client.call(CLOUDMAP, "WatchChanges", params)
            for change in out["Changes"]:
                if args.json:
                    print(json.dumps(change), flush=True)
                else:
                    ident = change.get("InstanceId") or change.get("ServiceId") or change.get("NamespaceId")
                    where = change.get("ServiceId", "") if change.get("InstanceId") else ""
                    print(f"{change['Revision']}  {change['Type']:<9}  {where}  {ident}".rstrip(), flush=True)
            params["Since"] = out["Revision"]
            if args.once and out["Changes"]:
                return 0

    p = acts.add_parser("namespaces", help="list namespaces")
    ctx.client_args(p)
    p.set_defaults(func=namespaces)
    p = acts.add_parser("services", help="list services")
    ctx.client_args(p)
    p.add_argument("--namespace", help="only this namespace (name or id)")
    p.set_defaults(func=services)
    p = acts.add_parser("instances", help="list a service's instances and their health")
    ctx.client_args(p)
    p.add_argument("service", help="service id, or name (with --namespace when ambiguous)")
    p.add_argument("--namespace", help="namespace of the service (name or id)")
    p.set_defaults(func=instances)
    p = acts.add_parser("watch", help="follow changes (register, deregister, attributes, health)")
    ctx.client_args(p)
    p.add_argument("--since", type=int, default=0, help="revision last seen (default: from the start)")
    p.add_argument("--namespace", help="namespace name (with --service)")
    p.add_argument("--service", help="only this service's changes")
    p.add_argument("--once", action="store_true", help="exit after the first batch of changes")
    p.set_defaults(func=watch)


def _all_health(client: Any, service_id: str) -> dict[str, str]:
    out: dict[str, str] = {}
    params: dict[str, Any] = {"ServiceId": service_id}
    while True:
        page = client.call(CLOUDMAP, "GetInstancesHealthStatus", params)
        out.update(page.get("Status", {}))
        if not page.get("NextToken"):
            return out
        params["NextToken"] = page["NextToken"]
