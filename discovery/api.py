"""Cloud Map's API (``Route53AutoNaming_v20170314``): namespaces, services, instances,
operations and tags, with AWS's shapes, errors and ARNs.

Writes go to the store in one transaction each and record a change (see
:mod:`discovery.tables`); the catalog's index is refreshed before the handler answers, so a
client reads its own writes. Asynchronous operations (namespaces, instances) complete inside
the request: their OperationId is already SUCCESS when returned.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

from discovery import model, tables
from discovery.errors import (
    CustomHealthNotFound,
    DuplicateRequest,
    InstanceNotFound,
    InvalidInput,
    NamespaceAlreadyExists,
    NamespaceNotFound,
    OperationNotFound,
    ResourceInUse,
    ResourceLimitExceeded,
    ResourceNotFoundException,
    ServiceAlreadyExists,
    ServiceNotFound,
    TooManyTagsException,
    with_fields,
)
from discovery.index import Catalog
from discovery.model import Instance, Namespace, Service, text
from dockyard.aws.paging import page
from dockyard.aws.protocol import Call
from dockyard.config import Config
from dockyard.store import Store, Tx

__all__ = ["CloudMap"]

log = logging.getLogger("dockyard.discovery")

_OP_ALNUM = string.ascii_lowercase + string.digits
DISCOVER_CACHE_SIZE = 4096


def _operation_id() -> str:
    head = "".join(secrets.choice(_OP_ALNUM) for _ in range(32))
    return head + "-" + "".join(secrets.choice(_OP_ALNUM) for _ in range(9))


def _ident(value: str) -> str:
    """An id from an id or an ARN (``arn:...:namespace/ns-x`` -> ``ns-x``)."""
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def _int(params: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{key} must be an integer from {low} to {high}.")
    return value


def _page(items: list[Any], params: dict[str, Any], maximum: int = 100) -> tuple[list[Any], str | None]:
    return page(items, params, InvalidInput, default=maximum, maximum=maximum,
                token_key="NextToken", max_key="MaxResults")


def _filters(params: dict[str, Any], allowed: dict[str, tuple[str, ...]]) -> list[tuple[str, str, list[str]]]:
    """ListNamespaces/ListServices/ListOperations filters as (name, condition, values)."""
    raw = params.get("Filters") or []
    if not isinstance(raw, list):
        raise InvalidInput("Filters must be a list.")
    out = []
    for f in raw:
        if not isinstance(f, dict) or f.get("Name") not in allowed:
            raise InvalidInput(f"Filter Name must be one of {', '.join(allowed)}.")
        values = f.get("Values")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise InvalidInput("Filter Values must be a non-empty list of strings.")
        cond = f.get("Condition", "EQ")
        if cond not in allowed[f["Name"]]:
            raise InvalidInput(f"Condition {cond!r} is not supported for filter {f['Name']}.")
        if cond == "EQ" and len(values) != 1:
            raise InvalidInput("The EQ condition takes exactly one value.")
        if cond == "BETWEEN" and len(values) != 2:
            raise InvalidInput("The BETWEEN condition takes two values.")
        out.append((f["Name"], cond, values))
    return out


def _passes(value: str, cond: str, values: list[str]) -> bool:
    if cond == "EQ":
        return value == values[0]
    if cond == "IN":
        return value in values
    if cond == "BEGINS_WITH":
        return value.startswith(values[0])
    return False


class CloudMap:
    """The operation handlers, bound to one store, config and catalog."""

    def __init__(self, store: Store, config: Config, catalog: Catalog,
                 on_instances: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.config = config
        self.catalog = catalog
        self.on_instances = on_instances or (lambda service_id: None)
        self._discover_cache: dict[tuple, bytes] = {}

    def operations(self) -> dict[str, Callable[[Call, dict[str, Any]], Any]]:
        return {
            "CreateHttpNamespace": self.create_http_namespace,
            "CreatePrivateDnsNamespace": self.create_private_dns_namespace,
            "CreatePublicDnsNamespace": self.create_public_dns_namespace,
            "GetNamespace": self.get_namespace,
            "ListNamespaces": self.list_namespaces,
            "UpdateHttpNamespace": self.update_namespace,
            "UpdatePrivateDnsNamespace": self.update_namespace,
            "UpdatePublicDnsNamespace": self.update_namespace,
            "DeleteNamespace": self.delete_namespace,
            "CreateService": self.create_service,
            "GetService": self.get_service,
            "ListServices": self.list_services,
            "UpdateService": self.update_service,
            "DeleteService": self.delete_service,
            "RegisterInstance": self.register_instance,
            "DeregisterInstance": self.deregister_instance,
            "GetInstance": self.get_instance,
            "ListInstances": self.list_instances,
            "DiscoverInstances": self.discover_instances,
            "DiscoverInstancesRevision": self.discover_instances_revision,
            "GetInstancesHealthStatus": self.get_instances_health_status,
            "UpdateInstanceCustomHealthStatus": self.update_instance_custom_health_status,
            "GetOperation": self.get_operation,
            "ListOperations": self.list_operations,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
        }

    # -- helpers ----------------------------------------------------------------------
    @property
    def account(self) -> str:
        return self.config.account_id

    def _arn(self, kind: str, ident: str) -> str:
        return model.arn(self.config.region, self.account, kind, ident)

    def _namespace(self, ident: Any) -> Namespace:
        if not isinstance(ident, str) or not ident:
            raise InvalidInput("Id is required.")
        ns = self.catalog.index.namespaces.get(_ident(ident))
        if ns is None:
            raise NamespaceNotFound(f"Namespace not found: {ident}")
        return ns

    def _service(self, ident: Any, key: str = "Id") -> Service:
        if not isinstance(ident, str) or not ident:
            raise InvalidInput(f"{key} is required.")
        srv = self.catalog.index.services.get(_ident(ident))
        if srv is None:
            raise ServiceNotFound(f"Service not found: {ident}")
        return srv

    def _instance(self, service: Service, ident: Any) -> Instance:
        if not isinstance(ident, str) or not ident:
            raise InvalidInput("InstanceId is required.")
        inst = self.catalog.index.instances.get(service.id, {}).get(ident)
        if inst is None:
            raise InstanceNotFound(f"Instance not found: {ident}")
        return inst

    @staticmethod
    def _record_operation(tx: Tx, kind: str, targets: dict[str, str], request_id: str = "") -> str:
        op_id = _operation_id()
        now = time.time()
        tx.execute(
            "INSERT INTO cm_operations (id, type, status, targets, creator_request_id, created_at,"
            " updated_at) VALUES (?, ?, 'SUCCESS', ?, ?, ?, ?)",
            (op_id, kind, json.dumps(targets), request_id, now, now),
        )
        return op_id

    def _namespace_shape(self, ns: Namespace, full: bool = True) -> dict[str, Any]:
        props: dict[str, Any] = {"HttpProperties": {"HttpName": ns.name}}
        if ns.is_dns:
            zone_id = "Z" + ns.id[3:].upper()
            props["DnsProperties"] = {"HostedZoneId": zone_id, "SOA": {"TTL": ns.soa_ttl or 15}}
        else:
            props["DnsProperties"] = {}
        out: dict[str, Any] = {
            "Id": ns.id, "Arn": ns.arn, "ResourceOwner": self.account, "Name": ns.name, "Type": ns.type,
            "ServiceCount": ns.service_count, "Properties": props, "CreateDate": ns.created_at,
        }
        if ns.description:
            out["Description"] = ns.description
        if full and ns.creator_request_id:
            out["CreatorRequestId"] = ns.creator_request_id
        return out

    def _service_shape(self, srv: Service, full: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Id": srv.id, "Arn": srv.arn, "ResourceOwner": self.account, "Name": srv.name,
            "NamespaceId": srv.namespace_id, "Type": srv.type,
            "InstanceCount": len(self.catalog.index.instances.get(srv.id, {})),
            "CreateDate": srv.created_at, "CreatedByAccount": self.account,
        }
        if srv.description:
            out["Description"] = srv.description
        if srv.dns_config:
            out["DnsConfig"] = srv.dns_config
        if srv.health_check:
            out["HealthCheckConfig"] = srv.health_check
        if srv.custom_health is not None:
            out["HealthCheckCustomConfig"] = srv.custom_health
        if full and srv.creator_request_id:
            out["CreatorRequestId"] = srv.creator_request_id
        return out

    # -- namespaces -------------------------------------------------------------------
    async def _create_namespace(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        name = model.check_namespace_name(params.get("Name"), "HTTP" if kind == "HTTP" else "DNS")
        request_id = text(params, "CreatorRequestId", maximum=64) or ""
        description = text(params, "Description") or ""
        tags = model.check_tags(params.get("Tags"))
        soa_ttl = model.check_soa_ttl(params.get("Properties")) if kind != "HTTP" else None
        if kind == "DNS_PRIVATE":
            text(params, "Vpc", required=True, maximum=64)
        async with self.store.transaction() as tx:
            if request_id:
                prior = tx.query_one(
                    "SELECT id FROM cm_operations WHERE creator_request_id = ? AND type = 'CREATE_NAMESPACE'",
                    (request_id,),
                )
                if prior is not None:
                    return {"OperationId": prior["id"]}
            row = tx.query_one("SELECT id, creator_request_id FROM cm_namespaces WHERE name = ?", (name,))
            if row is not None:
                raise with_fields(
                    NamespaceAlreadyExists(f"Namespace {name} already exists."),
                    CreatorRequestId=row["creator_request_id"] or None, NamespaceId=row["id"],
                )
            ns_id = model.new_id("ns")
            tx.execute(
                "INSERT INTO cm_namespaces (id, arn, name, type, description, soa_ttl, creator_request_id,"
                " created_at, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ns_id, self._arn("namespace", ns_id), name, kind, description,
                 soa_ttl if soa_ttl is not None else (15 if kind != "HTTP" else None),
                 request_id, time.time(), json.dumps(tags)),
            )
            op = self._record_operation(tx, "CREATE_NAMESPACE", {"NAMESPACE": ns_id}, request_id)
            tx.changed(tables.NAMESPACE, ns_id)
        self.catalog.reload()
        log.info("namespace created", extra={"namespace": name, "id": ns_id, "type": kind})
        return {"OperationId": op}

    async def create_http_namespace(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await self._create_namespace(params, "HTTP")

    async def create_private_dns_namespace(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await self._create_namespace(params, "DNS_PRIVATE")

    async def create_public_dns_namespace(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await self._create_namespace(params, "DNS_PUBLIC")

    async def get_namespace(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {"Namespace": self._namespace_shape(self._namespace(params.get("Id")))}

    async def list_namespaces(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        filters = _filters(params, {
            "TYPE": ("EQ", "IN"), "NAME": ("EQ", "BEGINS_WITH"), "HTTP_NAME": ("EQ", "BEGINS_WITH"),
            "RESOURCE_OWNER": ("EQ",),
        })
        items = sorted(self.catalog.index.namespaces.values(), key=lambda n: (n.created_at, n.id))
        for name, cond, values in filters:
            field = {"TYPE": "type", "NAME": "name", "HTTP_NAME": "name"}.get(name)
            if field is None:
                items = [n for n in items if _passes(self.account, cond, values)]
            else:
                items = [n for n in items if _passes(getattr(n, field), cond, values)]
        chunk, token = _page(items, params)
        out: dict[str, Any] = {"Namespaces": [self._namespace_shape(n, full=False) for n in chunk]}
        if token:
            out["NextToken"] = token
        return out

    async def update_namespace(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        ns = self._namespace(params.get("Id"))
        expected = {"UpdateHttpNamespace": "HTTP", "UpdatePrivateDnsNamespace": "DNS_PRIVATE",
                    "UpdatePublicDnsNamespace": "DNS_PUBLIC"}[call.operation]
        if ns.type != expected:
            raise InvalidInput(f"Namespace {ns.id} is of type {ns.type}; {call.operation} does not apply.")
        body = params.get("Namespace")
        if not isinstance(body, dict):
            raise InvalidInput("Namespace is required.")
        text(params, "UpdaterRequestId", maximum=64)
        description = text(body, "Description", required=expected == "HTTP")
        soa_ttl = model.check_soa_ttl(body.get("Properties")) if expected != "HTTP" else None
        async with self.store.transaction() as tx:
            if description is not None:
                tx.execute("UPDATE cm_namespaces SET description = ? WHERE id = ?", (description, ns.id))
            if soa_ttl is not None:
                tx.execute("UPDATE cm_namespaces SET soa_ttl = ? WHERE id = ?", (soa_ttl, ns.id))
            op = self._record_operation(tx, "UPDATE_NAMESPACE", {"NAMESPACE": ns.id})
            tx.changed(tables.NAMESPACE, ns.id)
        self.catalog.reload()
        return {"OperationId": op}

    async def delete_namespace(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        ns = self._namespace(params.get("Id"))
        async with self.store.transaction() as tx:
            if tx.query_one("SELECT 1 FROM cm_services WHERE namespace_id = ?", (ns.id,)):
                raise ResourceInUse(f"Namespace {ns.id} has services; delete them first.")
            tx.execute("DELETE FROM cm_namespaces WHERE id = ?", (ns.id,))
            op = self._record_operation(tx, "DELETE_NAMESPACE", {"NAMESPACE": ns.id})
            tx.changed(tables.NAMESPACE, ns.id)
        self.catalog.reload()
        log.info("namespace deleted", extra={"namespace": ns.name, "id": ns.id})
        return {"OperationId": op}

    # -- services ---------------------------------------------------------------------
    async def create_service(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        name = model.check_service_name(params.get("Name"))
        dns_config = params.get("DnsConfig")
        ns_ident = params.get("NamespaceId")
        if ns_ident is None and isinstance(dns_config, dict):
            ns_ident = dns_config.get("NamespaceId")
        if ns_ident is None:
            raise InvalidInput("NamespaceId is required.")
        ns = self._namespace(ns_ident)
        request_id = text(params, "CreatorRequestId", maximum=64) or ""
        description = text(params, "Description") or ""
        tags = model.check_tags(params.get("Tags"))
        interval = model.health_interval(tags)
        kind = params.get("Type")
        if kind not in (None, "HTTP"):
            raise InvalidInput("Type must be HTTP when given.")
        if dns_config is not None:
            if not ns.is_dns:
                raise InvalidInput("DnsConfig is only allowed in a DNS namespace.")
            if kind == "HTTP":
                raise InvalidInput("A service of Type HTTP cannot have a DnsConfig.")
            dns_config = model.check_dns_config(dns_config)
            dns_config.pop("NamespaceId", None)
            kind = "DNS_HTTP"
        else:
            kind = "HTTP"
        if "HealthCheckConfig" in params and "HealthCheckCustomConfig" in params:
            raise InvalidInput("HealthCheckConfig and HealthCheckCustomConfig are mutually exclusive.")
        health = params.get("HealthCheckConfig")
        health = model.check_health_check_config(health) if health is not None else None
        custom = params.get("HealthCheckCustomConfig")
        custom = model.check_custom_health_config(custom) if custom is not None else None
        async with self.store.transaction() as tx:
            row = tx.query_one(
                "SELECT id, arn, creator_request_id FROM cm_services"
                " WHERE namespace_id = ? AND lower(name) = ?",
                (ns.id, name.lower()),
            )
            if row is not None:
                if request_id and row["creator_request_id"] == request_id:
                    srv_id = row["id"]
                else:
                    raise with_fields(
                        ServiceAlreadyExists(f"Service {name} already exists in namespace {ns.name}."),
                        CreatorRequestId=row["creator_request_id"] or None, ServiceId=row["id"],
                        ServiceArn=row["arn"],
                    )
            else:
                srv_id = model.new_id("srv")
                tx.execute(
                    "INSERT INTO cm_services (id, arn, namespace_id, name, type, description, dns_config,"
                    " health_check, custom_health, creator_request_id, created_at, tags)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (srv_id, self._arn("service", srv_id), ns.id, name, kind, description,
                     json.dumps(dns_config) if dns_config else None,
                     json.dumps(health) if health else None,
                     json.dumps(custom) if custom is not None else None,
                     request_id, time.time(), json.dumps(tags)),
                )
                tx.changed(tables.SERVICE, srv_id)
        self.catalog.reload()
        log.info("service created", extra={"service": name, "id": srv_id, "interval": interval})
        return {"Service": self._service_shape(self.catalog.index.services[srv_id])}

    async def get_service(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {"Service": self._service_shape(self._service(params.get("Id")))}

    async def list_services(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        filters = _filters(params, {"NAMESPACE_ID": ("EQ", "IN"), "RESOURCE_OWNER": ("EQ",)})
        items = sorted(self.catalog.index.services.values(), key=lambda s: (s.created_at, s.id))
        for name, cond, values in filters:
            if name == "NAMESPACE_ID":
                values = [_ident(v) for v in values]
                items = [s for s in items if _passes(s.namespace_id, cond, values)]
            else:
                items = [s for s in items if _passes(self.account, cond, values)]
        chunk, token = _page(items, params)
        out: dict[str, Any] = {"Services": [self._service_shape(s, full=False) for s in chunk]}
        if token:
            out["NextToken"] = token
        return out

    async def update_service(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        srv = self._service(params.get("Id"))
        body = params.get("Service")
        if not isinstance(body, dict):
            raise InvalidInput("Service is required.")
        description = text(body, "Description") or ""
        dns_config = srv.dns_config
        if body.get("DnsConfig") is not None:
            if not srv.dns_config:
                raise InvalidInput("This service has no DnsConfig to update.")
            records = model.check_dns_config(body["DnsConfig"], update=True)["DnsRecords"]
            if {r["Type"] for r in records} != {r["Type"] for r in srv.dns_config["DnsRecords"]}:
                raise InvalidInput("UpdateService can change record TTLs but not record types.")
            dns_config = {**srv.dns_config, "DnsRecords": records}
        health = body.get("HealthCheckConfig")
        if health is not None:
            if srv.custom_health is not None:
                raise InvalidInput("A service with HealthCheckCustomConfig cannot get a HealthCheckConfig.")
            health = model.check_health_check_config(health)
        async with self.store.transaction() as tx:
            tx.execute(
                "UPDATE cm_services SET description = ?, dns_config = ?, health_check = ? WHERE id = ?",
                (description, json.dumps(dns_config) if dns_config else None,
                 json.dumps(health) if health else None, srv.id),
            )
            if health is None and srv.health_check:
                tx.execute("UPDATE cm_instances SET health = 'UNKNOWN' WHERE service_id = ?", (srv.id,))
            elif health and not srv.health_check:
                tx.execute("UPDATE cm_instances SET health = 'HEALTHY' WHERE service_id = ?", (srv.id,))
            op = self._record_operation(tx, "UPDATE_SERVICE", {"SERVICE": srv.id})
            rev = tx.changed(tables.SERVICE, srv.id)
            tx.execute("UPDATE cm_services SET revision = ? WHERE id = ?", (rev, srv.id))
        self.catalog.reload()
        self.on_instances(srv.id)
        return {"OperationId": op}

    async def delete_service(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        srv = self._service(params.get("Id"))
        async with self.store.transaction() as tx:
            if tx.query_one("SELECT 1 FROM cm_instances WHERE service_id = ?", (srv.id,)):
                raise ResourceInUse(f"Service {srv.id} has registered instances; deregister them first.")
            tx.execute("DELETE FROM cm_services WHERE id = ?", (srv.id,))
            tx.changed(tables.SERVICE, srv.id)
        self.catalog.reload()
        self.on_instances(srv.id)
        return {}

    # -- instances --------------------------------------------------------------------
    async def register_instance(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        srv = self._service(params.get("ServiceId"), "ServiceId")
        inst_id = model.check_instance_id(params.get("InstanceId"))
        request_id = text(params, "CreatorRequestId", maximum=64) or ""
        attributes = model.check_attributes(params.get("Attributes"))
        model.check_instance_for_service(attributes, srv)
        key = f"{srv.id}/{inst_id}"
        async with self.store.transaction() as tx:
            if request_id:
                prior = tx.query_one(
                    "SELECT id, targets FROM cm_operations"
                    " WHERE creator_request_id = ? AND type = 'REGISTER_INSTANCE'",
                    (request_id,),
                )
                if prior is not None:
                    targets = json.loads(prior["targets"])
                    if targets.get("INSTANCE") != inst_id or targets.get("SERVICE") != srv.id:
                        raise DuplicateRequest(
                            f"CreatorRequestId {request_id} was already used for another instance."
                        )
                    return {"OperationId": prior["id"]}
            row = tx.query_one(
                "SELECT * FROM cm_instances WHERE service_id = ? AND id = ?", (srv.id, inst_id)
            )
            if row is None:
                count = tx.query_one("SELECT COUNT(*) FROM cm_instances WHERE service_id = ?", (srv.id,))[0]
                if count >= model.MAX_INSTANCES_PER_SERVICE:
                    raise ResourceLimitExceeded(
                        f"A service can have at most {model.MAX_INSTANCES_PER_SERVICE} instances."
                    )
                health = "HEALTHY" if srv.has_health else "UNKNOWN"
                tx.execute(
                    "INSERT INTO cm_instances (service_id, id, attributes, health, creator_request_id,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (srv.id, inst_id, json.dumps(attributes), health, request_id, time.time()),
                )
            else:
                tx.execute(
                    "UPDATE cm_instances SET attributes = ?, creator_request_id = ?"
                    " WHERE service_id = ? AND id = ?",
                    (json.dumps(attributes), request_id, srv.id, inst_id),
                )
            op = self._record_operation(
                tx, "REGISTER_INSTANCE", {"SERVICE": srv.id, "INSTANCE": inst_id}, request_id
            )
            rev = tx.changed(tables.INSTANCE, key)
            tx.execute("UPDATE cm_services SET revision = ? WHERE id = ?", (rev, srv.id))
        self.catalog.reload_service(srv.id)
        self.on_instances(srv.id)
        log.info("instance registered", extra={"service": srv.name, "instance": inst_id})
        return {"OperationId": op}

    async def deregister_instance(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        srv = self._service(params.get("ServiceId"), "ServiceId")
        inst = self._instance(srv, params.get("InstanceId"))
        async with self.store.transaction() as tx:
            tx.execute("DELETE FROM cm_instances WHERE service_id = ? AND id = ?", (srv.id, inst.id))
            op = self._record_operation(tx, "DEREGISTER_INSTANCE", {"SERVICE": srv.id, "INSTANCE": inst.id})
            rev = tx.changed(tables.INSTANCE, f"{srv.id}/{inst.id}")
            tx.execute("UPDATE cm_services SET revision = ? WHERE id = ?", (rev, srv.id))
        self.catalog.reload_service(srv.id)
        self.on_instances(srv.id)
        log.info("instance deregistered", extra={"service": srv.name, "instance": inst.id})
        return {"OperationId": op}

    def _instance_shape(self, inst: Instance, full: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"Id": inst.id, "Attributes": inst.attributes, "CreatedByAccount": self.account}
        if full and inst.creator_request_id:
            out["CreatorRequestId"] = inst.creator_request_id
        return out

    async def get_instance(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        srv = self._service(params.get("ServiceId"), "ServiceId")
        inst = self._instance(srv, params.get("InstanceId"))
        return {"ResourceOwner": self.account, "Instance": self._instance_shape(inst, True)}

    async def list_instances(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        srv = self._service(params.get("ServiceId"), "ServiceId")
        chunk, token = _page(self.catalog.index.instances_of(srv.id), params)
        out: dict[str, Any] = {
            "ResourceOwner": self.account, "Instances": [self._instance_shape(i, False) for i in chunk]
        }
        if token:
            out["NextToken"] = token
        return out

    def _discover_target(self, params: dict[str, Any]) -> Service:
        ns_name = text(params, "NamespaceName", required=True)
        srv_name = text(params, "ServiceName", required=True, maximum=127)
        index = self.catalog.index
        if index.namespace_named(ns_name) is None:  # type: ignore[arg-type]
            raise NamespaceNotFound(f"Namespace not found: {ns_name}")
        srv = index.service_named(ns_name, srv_name)  # type: ignore[arg-type]
        if srv is None:
            raise ServiceNotFound(f"Service not found: {srv_name}")
        return srv

    @staticmethod
    def _parameters(params: dict[str, Any], key: str) -> dict[str, str] | None:
        value = params.get(key)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise InvalidInput(f"{key} must be a map of strings.")
        return value

    async def discover_instances(self, call: Call, params: dict[str, Any]) -> dict[str, Any] | bytes:
        """DiscoverInstances, answered from the index. When the answer is not a random sample
        (every match fits in MaxResults), its serialised JSON is cached until the service's
        revision changes: serialising 100 instances costs more than the rest of the request."""
        srv = self._discover_target(params)
        status = params.get("HealthStatus", "HEALTHY")
        if status not in ("HEALTHY", "UNHEALTHY", "ALL", "HEALTHY_OR_ELSE_ALL"):
            raise InvalidInput("HealthStatus must be HEALTHY, UNHEALTHY, ALL or HEALTHY_OR_ELSE_ALL.")
        query = self._parameters(params, "QueryParameters")
        optional = self._parameters(params, "OptionalParameters")
        limit = _int(params, "MaxResults", 100, 1, 1000)
        filters = json.dumps([query, optional], sort_keys=True) if query or optional else ""
        key = (srv.id, srv.revision, status, limit, filters)
        cached = self._discover_cache.get(key)
        if cached is not None:
            return cached
        instances = self.catalog.index.instances_of(srv.id)
        chosen = model.select_instances(instances, srv, status, query, optional, limit)
        ns = self.catalog.index.namespaces[srv.namespace_id]
        out = {
            "Instances": [
                {"InstanceId": i.id, "NamespaceName": ns.name, "ServiceName": srv.name,
                 "HealthStatus": i.health, "Attributes": i.attributes}
                for i in chosen
            ],
            "InstancesRevision": srv.revision,
        }
        if len(instances) > limit:
            return out  # possibly sampled: never cached
        if len(self._discover_cache) >= DISCOVER_CACHE_SIZE:
            self._discover_cache.clear()
        body = json.dumps(out, separators=(",", ":")).encode()
        self._discover_cache[key] = body
        return body

    async def discover_instances_revision(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {"InstancesRevision": self._discover_target(params).revision}

    async def get_instances_health_status(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        srv = self._service(params.get("ServiceId"), "ServiceId")
        instances = self.catalog.index.instances_of(srv.id)
        wanted = params.get("Instances")
        if wanted is not None:
            if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
                raise InvalidInput("Instances must be a list of instance ids.")
            by_id = {i.id: i for i in instances}
            missing = [w for w in wanted if w not in by_id]
            if missing:
                raise InstanceNotFound(f"Instance not found: {missing[0]}")
            instances = [by_id[w] for w in wanted]
        chunk, token = _page(instances, params)
        out: dict[str, Any] = {"Status": {i.id: i.health for i in chunk}}
        if token:
            out["NextToken"] = token
        return out

    async def update_instance_custom_health_status(
        self, call: Call, params: dict[str, Any]
    ) -> dict[str, Any]:
        srv = self._service(params.get("ServiceId"), "ServiceId")
        inst = self._instance(srv, params.get("InstanceId"))
        status = params.get("Status")
        if status not in ("HEALTHY", "UNHEALTHY"):
            raise InvalidInput("Status must be HEALTHY or UNHEALTHY.")
        if srv.custom_health is None:
            raise CustomHealthNotFound(f"Service {srv.id} has no HealthCheckCustomConfig.")
        await set_health(self.store, self.catalog, srv, inst.id, status, "custom")
        return {}

    # -- operations -------------------------------------------------------------------
    def _operation_shape(self, row: Any) -> dict[str, Any]:
        out = {
            "Id": row["id"], "OwnerAccount": self.account, "Type": row["type"], "Status": row["status"],
            "CreateDate": row["created_at"], "UpdateDate": row["updated_at"],
            "Targets": json.loads(row["targets"]),
        }
        if row["error_code"]:
            out["ErrorCode"], out["ErrorMessage"] = row["error_code"], row["error_message"]
        return out

    async def get_operation(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        op_id = text(params, "OperationId", required=True, maximum=255)
        row = self.store.query_one("SELECT * FROM cm_operations WHERE id = ?", (op_id,))
        if row is None:
            raise OperationNotFound(f"Operation not found: {op_id}")
        return {"Operation": self._operation_shape(row)}

    async def list_operations(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        filters = _filters(params, {
            "NAMESPACE_ID": ("EQ",), "SERVICE_ID": ("EQ",), "STATUS": ("EQ", "IN"), "TYPE": ("EQ", "IN"),
            "UPDATE_DATE": ("BETWEEN",),
        })
        rows = self.store.query("SELECT * FROM cm_operations ORDER BY created_at")
        ops = [self._operation_shape(r) for r in rows]
        for name, cond, values in filters:
            if name == "NAMESPACE_ID":
                ops = [o for o in ops if o["Targets"].get("NAMESPACE") == _ident(values[0])]
            elif name == "SERVICE_ID":
                ops = [o for o in ops if o["Targets"].get("SERVICE") == _ident(values[0])]
            elif name in ("STATUS", "TYPE"):
                ops = [o for o in ops if _passes(o[name.title()], cond, values)]
            else:
                try:
                    low, high = float(values[0]), float(values[1])
                except ValueError:
                    raise InvalidInput("UPDATE_DATE values must be epoch seconds.") from None
                ops = [o for o in ops if low <= o["UpdateDate"] <= high]
        chunk, token = _page(ops, params)
        out: dict[str, Any] = {"Operations": [{"Id": o["Id"], "Status": o["Status"]} for o in chunk]}
        if token:
            out["NextToken"] = token
        return out

    # -- tags -------------------------------------------------------------------------
    def _tag_target(self, params: dict[str, Any]) -> tuple[str, str, list[dict[str, str]]]:
        resource = text(params, "ResourceARN", required=True, maximum=1011) or ""
        for table in ("cm_namespaces", "cm_services"):
            row = self.store.query_one(f"SELECT id, tags FROM {table} WHERE arn = ?", (resource,))
            if row is not None:
                return table, row["id"], json.loads(row["tags"])
        raise ResourceNotFoundException(f"Resource not found: {resource}")

    async def _write_tags(self, table: str, ident: str, tags: list[dict[str, str]]) -> None:
        if table == "cm_services":
            model.health_interval(tags)
        async with self.store.transaction() as tx:
            tx.execute(f"UPDATE {table} SET tags = ? WHERE id = ?", (json.dumps(tags), ident))
            tx.changed(tables.SERVICE if table == "cm_services" else tables.NAMESPACE, ident)
        self.catalog.reload()
        if table == "cm_services":
            self.on_instances(ident)

    async def tag_resource(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        table, ident, old = self._tag_target(params)
        if not params.get("Tags"):
            raise InvalidInput("Tags is required.")
        new = model.check_tags(params.get("Tags"))
        try:
            merged = model.merge_tags(old, new)
        except TooManyTagsException as e:
            raise with_fields(e, ResourceName=params.get("ResourceARN")) from None  # type: ignore[arg-type]
        await self._write_tags(table, ident, merged)
        return {}

    async def untag_resource(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        table, ident, old = self._tag_target(params)
        keys = params.get("TagKeys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise InvalidInput("TagKeys must be a list of strings.")
        await self._write_tags(table, ident, [t for t in old if t["Key"] not in keys])
        return {}

    async def list_tags_for_resource(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": self._tag_target(params)[2]}


async def set_health(store: Store, catalog: Catalog, service: Service, instance_id: str, status: str,
                     source: str) -> bool:
    """Record ``status`` for an instance; returns whether it changed (a change is an event)."""
    key = f"{service.id}/{instance_id}"
    async with store.transaction() as tx:
        row = tx.query_one(
            "SELECT health FROM cm_instances WHERE service_id = ? AND id = ?", (service.id, instance_id)
        )
        if row is None or row["health"] == status:
            return False
        tx.execute("UPDATE cm_instances SET health = ? WHERE service_id = ? AND id = ?",
                   (status, service.id, instance_id))
        rev = tx.changed(tables.HEALTH, key)
        tx.execute("UPDATE cm_services SET revision = ? WHERE id = ?", (rev, service.id))
    catalog.reload_service(service.id)
    log.info("instance health changed", extra={
        "service": service.name, "instance": instance_id, "from": row["health"], "to": status,
        "source": source,
    })
    return True
