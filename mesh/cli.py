"""``dockyard mesh route`` and ``dockyard mesh show``: App Mesh made friendly, over the control
API's App Mesh operations (botocore's ``appmesh`` client, signed with the CLI's credentials).

``dockyard mesh route SERVICE LABEL=WEIGHT... [--mesh NAME] [--port N]`` points virtual service
SERVICE (in mesh ``default`` unless ``--mesh``; the mesh must exist) at virtual router
``SERVICE-router`` and sets route ``SERVICE-route``'s weighted targets:

* a LABEL names the virtual node called LABEL, else the one virtual node whose name ends in
  ``-LABEL``; when several do, the one called ``<first DNS label of SERVICE>-LABEL`` (``v1`` for
  ``web.shop.local`` is ``web-v1``); otherwise an error naming the candidates. Unknown labels are
  an error naming them all, before anything is written.
* The router is created when missing, its listener on ``--port`` or else the port (and
  protocol) of the first target node's listener; ``--port`` on an existing router replaces its
  listener's port. The virtual service is created when missing, and moved to the router when its
  provider is something else.
* A new route matches everything (``prefix /``, or the router's protocol's equivalent); an
  existing route keeps its kind, match, retry policy and timeout, and only its targets change.

``dockyard mesh show [--mesh NAME] [--json]`` lists each mesh's virtual services and their
providers, routers and their routes with weights, and virtual nodes with their service
discovery (Cloud Map namespace, service and attributes, or DNS hostname).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_commands", "parse_weights", "resolve_nodes", "route_spec", "show_mesh", "show_rows"]

DEFAULT_MESH = "default"
_ROUTE_KIND = {"http": "httpRoute", "http2": "http2Route", "grpc": "grpcRoute", "tcp": "tcpRoute"}
_KINDS = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")


class Problem(ValueError):
    """A user's mistake, shown as one line."""


def parse_weights(pairs: list[str]) -> list[tuple[str, int]]:
    """``["v1=90", "v2=10"]`` → ``[("v1", 90), ("v2", 10)]``; Problem for anything else."""
    out: list[tuple[str, int]] = []
    for pair in pairs:
        label, sep, weight = pair.partition("=")
        if not sep or not label or not weight.strip().isdigit() or int(weight) > 100:
            raise Problem(f"{pair!r} is not LABEL=WEIGHT (a whole number from 0 to 100)")
        if label in (seen[0] for seen in out):
            raise Problem(f"{label} is given twice")
        out.append((label, int(weight)))
    if not out:
        raise Problem("give at least one LABEL=WEIGHT")
    return out


def resolve_nodes(service: str, labels: list[str], nodes: list[str]) -> dict[str, str]:
    """Each label's virtual node by the rule in the module docstring; Problem naming every
    label that has none, or that several nodes could be."""
    stem = service.split(".")[0]
    found: dict[str, str] = {}
    unknown: list[str] = []
    for label in labels:
        if label in nodes:
            found[label] = label
            continue
        ends = [n for n in nodes if n.endswith(f"-{label}")]
        if len(ends) > 1 and f"{stem}-{label}" in ends:
            ends = [f"{stem}-{label}"]
        if len(ends) == 1:
            found[label] = ends[0]
        elif ends:
            raise Problem(f"{label} could be any of the virtual nodes {', '.join(sorted(ends))}: name one")
        else:
            unknown.append(label)
    if unknown:
        raise Problem(f"no virtual node for {', '.join(unknown)} (a node named so, or ending in -LABEL); "
                      f"virtual nodes: {', '.join(sorted(nodes)) or 'none'}")
    return found


def route_spec(
    existing: dict[str, Any] | None, protocol: str, targets: list[tuple[str, int]]
) -> dict[str, Any]:
    """The route's new spec: ``existing`` with only its weighted targets replaced, or a route
    matching everything of the router's ``protocol``."""
    weighted = [{"virtualNode": node, "weight": weight} for node, weight in targets]
    spec = json.loads(json.dumps(existing or {}))
    kind = next((k for k in _KINDS if spec.get(k)), None)
    if kind is None:
        kind = _ROUTE_KIND.get(protocol, "httpRoute")
        match: dict[str, Any] = {"prefix": "/"} if kind in ("httpRoute", "http2Route") else {}
        spec = {kind: {"match": match} if kind != "tcpRoute" else {}}
    spec[kind].setdefault("action", {})["weightedTargets"] = weighted
    return spec


def _targets(route: dict[str, Any]) -> list[dict[str, Any]]:
    spec = route.get("spec") or {}
    kind = next((k for k in _KINDS if spec.get(k)), None)
    return ((spec.get(kind) or {}).get("action") or {}).get("weightedTargets") or [] if kind else []


def _discovery(node: dict[str, Any]) -> dict[str, Any]:
    sd = (node.get("spec") or {}).get("serviceDiscovery") or {}
    if "awsCloudMap" in sd:
        cm = sd["awsCloudMap"]
        return {"type": "cloudMap", "namespace": cm.get("namespaceName"), "service": cm.get("serviceName"),
                "attributes": {a["key"]: a["value"] for a in cm.get("attributes") or []}}
    if "dns" in sd:
        return {"type": "dns", "hostname": sd["dns"].get("hostname")}
    return {}


Described = dict[str, Any]


def show_mesh(name: str, services: list[Described], routers: list[tuple[Described, list[Described]]],
              nodes: list[Described]) -> dict[str, Any]:
    """What ``mesh show --json`` prints for one mesh, from the Describe answers of its resources."""
    def provider(vs: dict[str, Any]) -> str:
        p = (vs.get("spec") or {}).get("provider") or {}
        if "virtualNode" in p:
            return f"virtualNode/{p['virtualNode']['virtualNodeName']}"
        if "virtualRouter" in p:
            return f"virtualRouter/{p['virtualRouter']['virtualRouterName']}"
        return ""

    return {
        "meshName": name,
        "virtualServices": [{"name": vs["virtualServiceName"], "provider": provider(vs)} for vs in services],
        "virtualRouters": [{
            "name": r["virtualRouterName"],
            "listeners": [lst.get("portMapping") for lst in (r.get("spec") or {}).get("listeners") or []],
            "routes": [{"name": rt["routeName"],
                        "kind": next((k for k in _KINDS if (rt.get("spec") or {}).get(k)), ""),
                        "targets": [{"virtualNode": t["virtualNode"], "weight": t["weight"]}
                                    for t in _targets(rt)]} for rt in routes],
        } for r, routes in routers],
        "virtualNodes": [{
            "name": n["virtualNodeName"], "serviceDiscovery": _discovery(n),
            "listeners": [lst.get("portMapping") for lst in (n.get("spec") or {}).get("listeners") or []],
        } for n in nodes],
    }


def show_rows(meshes: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One table row per resource of :func:`show_mesh`'s answers (kind, mesh, name, detail)."""
    rows: list[dict[str, str]] = []
    for m in meshes:
        rows.append({"kind": "mesh", "mesh": m["meshName"], "name": m["meshName"], "detail": ""})
        for vs in m["virtualServices"]:
            rows.append({"kind": "service", "mesh": m["meshName"], "name": vs["name"],
                         "detail": f"-> {vs['provider']}" if vs["provider"] else "(no provider)"})
        for r in m["virtualRouters"]:
            ports = ",".join(f"{p['port']}/{p['protocol']}" for p in r["listeners"] if p)
            rows.append({"kind": "router", "mesh": m["meshName"], "name": r["name"], "detail": ports})
            for rt in r["routes"]:
                weights = " ".join(f"{t['virtualNode']}={t['weight']}" for t in rt["targets"])
                rows.append({"kind": "route", "mesh": m["meshName"], "name": f"{r['name']}/{rt['name']}",
                             "detail": f"{rt['kind']} {weights}"})
        for n in m["virtualNodes"]:
            sd = n["serviceDiscovery"]
            if sd.get("type") == "cloudMap":
                attrs = ",".join(f"{k}={v}" for k, v in sorted(sd["attributes"].items()))
                detail = f"cloudmap {sd['service']}.{sd['namespace']}" + (f" {attrs}" if attrs else "")
            elif sd.get("type") == "dns":
                detail = f"dns {sd['hostname']}"
            else:
                detail = ""
            rows.append({"kind": "node", "mesh": m["meshName"], "name": n["name"], "detail": detail})
    return rows


# -- I/O ---------------------------------------------------------------------------------------
class _Api:
    """App Mesh calls through botocore; AWS errors become the CLI's ``ApiError``."""

    def __init__(self, ctx: Any, args: argparse.Namespace) -> None:
        import botocore.session
        from botocore.config import Config

        self.base = ctx.client(args)
        self.am = botocore.session.Session().create_client(
            "appmesh", region_name=self.base.region, endpoint_url=self.base.endpoint,
            aws_access_key_id=self.base.key, aws_secret_access_key=self.base.secret,
            config=Config(retries={"max_attempts": 1}, inject_host_prefix=False),
        )

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError, EndpointConnectionError

        from dockyard.client import ApiError

        try:
            return dict(getattr(self.am, operation)(**params))
        except ClientError as e:
            err = e.response.get("Error", {})
            raise ApiError(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0),
                           err.get("Code", "Error"), err.get("Message", "")) from None
        except EndpointConnectionError as e:
            raise self.base.unreachable(e) from None

    def all(self, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.call(operation, **params)
            out.extend(page.get(key, []))
            if not page.get("nextToken"):
                return out
            params["nextToken"] = page["nextToken"]

    def exists(self, operation: str, **params: Any) -> dict[str, Any] | None:
        from dockyard.client import ApiError

        try:
            return self.call(operation, **params)
        except ApiError as e:
            if e.code == "NotFoundException":
                return None
            raise


def _route(ctx: Any, args: argparse.Namespace) -> int:
    try:
        weights = parse_weights(args.weights)
    except Problem as e:
        raise ctx.UserError(str(e)) from None
    api = _Api(ctx, args)
    mesh, service = args.mesh, args.service
    if api.exists("describe_mesh", meshName=mesh) is None:
        raise ctx.UserError(f"no mesh {mesh}: create it (aws appmesh create-mesh --mesh-name {mesh}) or "
                            "pass --mesh")
    node_names = [n["virtualNodeName"] for n in api.all("list_virtual_nodes", "virtualNodes", meshName=mesh)]
    try:
        nodes = resolve_nodes(service, [label for label, _ in weights], node_names)
    except Problem as e:
        raise ctx.UserError(str(e)) from None
    router_name, route_name = f"{service}-router", f"{service}-route"
    router = (api.exists("describe_virtual_router", meshName=mesh, virtualRouterName=router_name) or {}).get(
        "virtualRouter")
    listeners = (router or {}).get("spec", {}).get("listeners") or []
    router_spec = None  # the router's new spec, when it is created or its port changes
    if router is None or (args.port and [lst["portMapping"]["port"] for lst in listeners] != [args.port]):
        mapping = _port_mapping(api, mesh, nodes[weights[0][0]], listeners, args.port, ctx)
        router_spec = {"listeners": [{"portMapping": mapping}]}
        listeners = router_spec["listeners"]
    protocol = listeners[0]["portMapping"]["protocol"] if listeners else "http"
    existing = (api.exists("describe_route", meshName=mesh, virtualRouterName=router_name,
                           routeName=route_name) or {}).get("route")
    spec = route_spec(existing and existing.get("spec"), protocol, [(nodes[lb], w) for lb, w in weights])
    from mesh.appmesh_errors import BadRequestException  # imported late: dockyard's startup stays quick
    from mesh.appmesh_routespec import check_route_spec

    try:  # the server checks it again; checked here so that bad weights write nothing at all
        check_route_spec(spec)
    except BadRequestException as e:
        raise ctx.UserError(f"BadRequestException: {e}") from None
    if router_spec is not None:
        verb = "create_virtual_router" if router is None else "update_virtual_router"
        api.call(verb, meshName=mesh, virtualRouterName=router_name, spec=router_spec)
    verb = "update_route" if existing else "create_route"
    route = api.call(verb, meshName=mesh, virtualRouterName=router_name, routeName=route_name,
                     spec=spec)["route"]
    provider = {"provider": {"virtualRouter": {"virtualRouterName": router_name}}}
    vs = (api.exists("describe_virtual_service", meshName=mesh, virtualServiceName=service) or {}).get(
        "virtualService")
    if vs is None:
        api.call("create_virtual_service", meshName=mesh, virtualServiceName=service, spec=provider)
    elif (vs.get("spec") or {}).get("provider") != provider["provider"]:
        api.call("update_virtual_service", meshName=mesh, virtualServiceName=service, spec=provider)
    if args.json:
        print(json.dumps(route, indent=2, default=str))
    else:
        split = ", ".join(f"{nodes[lb]} {w}" for lb, w in weights)
        print(f"{service} -> {router_name}/{route_name}: {split} (mesh {mesh}, version "
              f"{route['metadata']['version']})")
    return 0


def _port_mapping(api: _Api, mesh: str, node: str, listeners: list[dict[str, Any]], port: int | None,
                  ctx: Any) -> dict[str, Any]:
    """The router's listener: ``port`` (keeping the protocol) or the first target node's."""
    node_listeners = api.call("describe_virtual_node", meshName=mesh, virtualNodeName=node)[
        "virtualNode"]["spec"].get("listeners") or []
    known = (listeners or node_listeners or [{}])[0].get("portMapping") or {}
    if port is None and not known:
        raise ctx.UserError(f"virtual node {node} has no listener: give the router's port with --port")
    return {"port": port or known["port"], "protocol": known.get("protocol", "http")}


def _show(ctx: Any, args: argparse.Namespace) -> int:
    api = _Api(ctx, args)
    names = [m["meshName"] for m in api.all("list_meshes", "meshes")]
    if args.mesh:
        if args.mesh not in names:
            raise ctx.UserError(f"no mesh {args.mesh}")
        names = [args.mesh]
    shown = []
    for mesh in names:
        services = [
            api.call("describe_virtual_service", meshName=mesh,
                     virtualServiceName=s["virtualServiceName"])["virtualService"]
            for s in api.all("list_virtual_services", "virtualServices", meshName=mesh)]
        routers = []
        for r in api.all("list_virtual_routers", "virtualRouters", meshName=mesh):
            name = r["virtualRouterName"]
            router = api.call("describe_virtual_router", meshName=mesh,
                              virtualRouterName=name)["virtualRouter"]
            routes = [api.call("describe_route", meshName=mesh, virtualRouterName=name,
                               routeName=rt["routeName"])["route"]
                      for rt in api.all("list_routes", "routes", meshName=mesh, virtualRouterName=name)]
            routers.append((router, routes))
        nodes = [api.call("describe_virtual_node", meshName=mesh, virtualNodeName=n["virtualNodeName"])
                 ["virtualNode"] for n in api.all("list_virtual_nodes", "virtualNodes", meshName=mesh)]
        shown.append(show_mesh(mesh, services, routers, nodes))
    if args.json:
        print(json.dumps({"meshes": shown}, indent=2))
    else:
        print(ctx.table(show_rows(shown), ["kind", "mesh", "name", "detail"]))
    return 0


def add_commands(sub: Any, ctx: Any) -> None:
    """Add ``dockyard mesh route`` and ``dockyard mesh show``."""
    mesh = sub.add_parser("mesh", help="App Mesh: weighted routes, and what the mesh holds")
    acts = mesh.add_subparsers(dest="mesh_command", required=True, metavar="ACTION")
    p = acts.add_parser("route", help="split a virtual service's traffic: SERVICE v1=90 v2=10")
    ctx.client_args(p)
    p.add_argument("service", help="virtual service name, e.g. web.shop.local")
    p.add_argument("weights", nargs="+", metavar="LABEL=WEIGHT",
                   help="virtual node LABEL (or one named *-LABEL) and its weight, 0-100")
    p.add_argument("--mesh", default=DEFAULT_MESH, help=f"mesh name (default: {DEFAULT_MESH})")
    p.add_argument("--port", type=int, help="the router's listener port (default: the first node's)")
    p.set_defaults(func=lambda args: _route(ctx, args))
    p = acts.add_parser("show", help="meshes, virtual services, routers, routes and virtual nodes")
    ctx.client_args(p)
    p.add_argument("--mesh", help="only this mesh")
    p.set_defaults(func=lambda args: _show(ctx, args))
