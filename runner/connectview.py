"""The runner's Service Connect state, as committed: what the mesh reads through
``mesh.seams.ConnectView`` (structurally; the runner does not import the mesh).

:class:`ConnectView` is returned by :func:`runner.part.install` as ``RunnerPart.connect``; the
assembly hands it to the mesh. It reads the store on each call (through :mod:`runner.data`),
so it answers what is committed; ``change_topics`` are the topics after whose changes its
answers may differ (tasks: placed, stopped, moved; services: created, updated, deleted).
"""

from __future__ import annotations

from collections.abc import Sequence

from dockyard.config import Config
from dockyard.store import Store
from runner import connect, data
from runner.connect import ConnectEntry, MeshedTask
from runner.taskshapes import task_arn

__all__ = ["ConnectView", "namespace_services"]


def namespace_services(store: Store, namespace: str) -> list[ConnectEntry]:
    """The Service Connect services of every ECS service not INACTIVE (ACTIVE, or DRAINING with
    tasks that may still run) in the namespace with this name
    (:func:`runner.connect.namespace_entries`)."""
    return connect.namespace_entries([svc.deployments for svc in data.live_services(store)], namespace)


class ConnectView:
    """See module docstring."""

    change_topics: Sequence[str] = (data.TASK_TOPIC, data.SERVICE_TOPIC)

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config

    def meshed_tasks(self) -> list[MeshedTask]:
        """Every task with a Service Connect state that is not STOPPED (one wanted STOPPED is
        still there until it has stopped: it leaves discovery first, then stops)."""
        out = []
        for t in data.meshed_tasks(self.store):
            c = t.connect
            assert c is not None
            out.append(MeshedTask(
                task_arn=task_arn(self.config, t.cluster, t.id),
                cluster=t.cluster, service=t.service, namespace=c.namespace, family=t.family,
                revision=t.revision, alias_addresses=dict(c.alias_addresses), ingress=tuple(c.ingress),
                egress_port=c.egress_port, access_log=c.access_log, access_log_query=c.access_log_query,
            ))
        return out

    def namespace_services(self, namespace: str) -> list[ConnectEntry]:
        """The Service Connect services in the namespace with this name (see
        :func:`namespace_services`)."""
        return namespace_services(self.store, namespace)
