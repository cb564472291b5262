"""The mesh controller: desired state in, a snapshot per node out (I/O around pure steps).

It follows ``store.changes`` on the App Mesh topics (``mesh/...``) and the topics the
``ConnectView`` (the runner: meshed tasks, ECS services) and the ``InstanceView`` (discovery:
instances, health) name. Changes on the instance view's topics are discovery churn, debounced
(:class:`mesh.debounce.Debounce`: about 100 ms of quiet, at most 1 s); any other change is
pushed at once. A push re-reads everything through the views and ``mesh.data``, builds the
desired mesh (:func:`mesh.desired.build`) and computes each node's snapshot
(:func:`mesh.snapshot.compute`): the meshed tasks, the virtual gateways' Envoys
(:func:`mesh.gateway.gateway_snapshot`), and any other node connected now (which gets an empty
snapshot). After each push ``on_gateways`` is told the gateways (``mesh.gateways`` starts and
stops their Envoys). The nodes of one push share a :class:`mesh.snapshot.Shared`, so what
they have in common (clusters, endpoints, routes) is built and serialized once per push. A
node whose versions did not change is left alone, so its Envoy is sent nothing; a node neither
meshed nor connected any more is forgotten.

Without a ``ConnectView`` (the runner does not offer one) there are no meshed tasks: every
node that connects gets an empty snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from mesh.cache import SnapshotCache
from mesh.data import GATEWAY_ROUTE, MESH_TOPIC, ROUTE, TOPICS, VIRTUAL_GATEWAY, VIRTUAL_ROUTER, Data
from mesh.debounce import Debounce
from mesh.desired import AppMeshSpecs, Desired, build
from mesh.gateway import Gateway, gateway_snapshot
from mesh.model import MeshConfig, Node
from mesh.seams import ConnectView, Instance, InstanceView
from mesh.snapshot import Shared, compute
from mesh.telemetry.traces_envoy import Tracing

__all__ = ["VIRTUAL_NODE", "VIRTUAL_SERVICE", "Controller", "app_mesh_topics", "read_app_mesh"]

log = logging.getLogger("dockyard.mesh")

# App Mesh's kinds in ``am_resources`` (``mesh.data``), named like the stored ones.
VIRTUAL_NODE = "virtualNode"
VIRTUAL_SERVICE = "virtualService"


def app_mesh_topics() -> set[str]:
    """The topics of App Mesh's writes (``mesh.data``: meshes and every kind of resource)."""
    return {MESH_TOPIC, *TOPICS.values(), "mesh/virtual-node", "mesh/virtual-service"}


def read_app_mesh(data: Data) -> AppMeshSpecs:
    """App Mesh's stored resources, as :func:`mesh.desired.build` takes them."""
    meshes = [m.name for m in data.meshes()]
    nodes, services, routers, routes, gateways, gateway_routes = {}, {}, {}, {}, {}, {}
    for m in meshes:
        nodes[m] = {r.name: r.spec for r in data.resources(VIRTUAL_NODE, m)}
        services[m] = {r.name: r.spec for r in data.resources(VIRTUAL_SERVICE, m)}
        routers[m] = {r.name: r.spec for r in data.resources(VIRTUAL_ROUTER, m)}
        routes[m] = {name: {r.name: r.spec for r in data.resources(ROUTE, m, name)} for name in routers[m]}
        gateways[m] = {r.name: r.spec for r in data.resources(VIRTUAL_GATEWAY, m)}
        gateway_routes[m] = {name: {r.name: r.spec for r in data.resources(GATEWAY_ROUTE, m, name)}
                             for name in gateways[m]}
    return AppMeshSpecs(tuple(meshes), nodes, services, routers, routes, gateways, gateway_routes)


class Controller:
    """Keeps ``cache`` at the desired state; ``run()`` until cancelled."""

    def __init__(
        self,
        data: Data,
        cache: SnapshotCache,
        connect: ConnectView | None = None,
        instances: InstanceView | None = None,
        connected: Callable[[], set[str]] = set,
        debounce: Debounce | None = None,
        clock: Callable[[], float] = time.monotonic,
        tracing: Tracing | None = None,
        traced: Callable[[str], bool] = lambda node: True,
        gateway_host: str = "0.0.0.0",
        on_gateways: Callable[[tuple[Gateway, ...]], None] | None = None,
    ) -> None:
        self.gateway_host = gateway_host  # where the virtual gateways' Envoys listen
        self.on_gateways = on_gateways  # told the gateways after each push (mesh.gateways runs them)
        self.data = data
        self.tracing = tracing  # the sidecars' Zipkin tracer (mesh.telemetry.traces_envoy)
        self.traced = traced  # False for a node whose bootstrap has no collector cluster
        self.store = data.store
        self.cache = cache
        self.connect = connect
        self.instances = instances
        self.connected = connected
        self.debounce = debounce or Debounce()
        self.clock = clock
        self.desired = Desired(MeshConfig(), {})
        self.shared = Shared()  # of self.desired
        self.pushes = 0  # recomputations done (for tests and metrics)
        self.external: set[str] = set()  # nodes whose snapshots another part sets (the edge)

    @property
    def churn_topics(self) -> frozenset[str]:
        return frozenset(self.instances.change_topics) if self.instances is not None else frozenset()

    @property
    def topics(self) -> tuple[str, ...]:
        found = app_mesh_topics() | self.churn_topics
        if self.connect is not None:
            found |= set(self.connect.change_topics)
        return tuple(sorted(found))

    def _instances(self, namespace: str, service: str) -> list[Instance] | None:
        if self.instances is None:
            return None
        found = self.instances.instances(namespace, service)
        return None if found is None else list(found)

    def read(self) -> Desired:
        """The desired mesh as committed now."""
        tasks = list(self.connect.meshed_tasks()) if self.connect is not None else []
        namespaces = {t.namespace for t in tasks}
        services = (
            {ns: list(self.connect.namespace_services(ns)) for ns in namespaces} if self.connect else {}
        )
        return build(tasks, services, read_app_mesh(self.data), self._instances, self.gateway_host)

    def push(self) -> list[str]:
        """Recompute every node's snapshot; returns the nodes whose snapshot changed."""
        desired = self.read()
        if desired.problems and desired.problems != self.desired.problems:
            log.warning("mesh: not served", extra={"problems": list(desired.problems)})
        self.desired = desired
        self.shared = Shared()
        self.pushes += 1
        meshed = {c.node for c in desired.config.clients} | {g.node for g in desired.gateways}
        connected = self.connected()
        for node in set(self.cache.nodes()) - meshed - connected - self.external:
            self.cache.clear_snapshot(node)
        changed = [n for n in sorted((meshed | connected) - self.external) if self.update(n)]
        if self.on_gateways is not None:
            self.on_gateways(desired.gateways)
        return changed

    def update(self, node: str) -> bool:
        """Set ``node``'s snapshot from the last desired mesh if its versions changed."""
        gateway = next((g for g in self.desired.gateways if g.node == node), None)
        if gateway is not None:
            services = self.shared.make("services", lambda: {v.name: v for v in self.desired.config.services})
            snapshot = gateway_snapshot(gateway, services, self.desired.endpoints, self.shared)
        else:
            snapshot = compute(self.desired.config, self.desired.endpoints, Node(node), self.shared,
                               self.tracing if self.tracing is not None and self.traced(node) else None)
        old = self.cache.get_snapshot(node)
        same = old is not None and dict(old.versions) == dict(snapshot.versions)
        if same and old.members == snapshot.members:
            return False
        try:
            self.cache.set_snapshot(node, snapshot)
        except ValueError as e:  # inconsistent: the node keeps what it had
            log.error("mesh: snapshot refused", extra={"node": node, "error": str(e)})
            return False
        return True

    def node_connected(self, node: str) -> None:
        """A stream named ``node``: give it a snapshot now if it has none (an unknown node
        gets an empty one), or, with tracing, again: a sidecar whose bootstrap predates the
        collector cluster gets listeners without the tracer (else it would NACK them). An
        external node (the edge's) is left to its owner."""
        if node not in self.external and (self.cache.get_snapshot(node) is None or self.tracing is not None):
            self.update(node)

    def note(self, topics: list[str]) -> None:
        now = self.clock()
        churn = self.churn_topics
        for topic in topics:
            (self.debounce.churn if topic in churn else self.debounce.urgent)(now)

    async def run(self) -> None:
        since = self.store.revision
        self.push()
        topics = self.topics
        while True:
            deadline = self.debounce.deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            changes = await self.store.changes(since, topics, timeout=timeout)
            if changes:
                since = changes[-1].revision
                self.note([c.topic for c in changes])
            if self.debounce.due(self.clock()):
                self.debounce.pushed()
                try:
                    self.push()
                except Exception as e:  # a bad read must not end the controller
                    log.exception("mesh: push failed", extra={"error": str(e)})
            await asyncio.sleep(0)
