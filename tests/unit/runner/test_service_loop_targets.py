"""The service loop and target groups (``loadBalancers``) over a real store, with the
``runner.seams.TargetGroups`` seam recorded: registration once RUNNING, the groups' health in
the reconciler's view, deregistration with the group's delay before the task may stop."""

from __future__ import annotations

import time
import uuid

from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, data, part, services, taskdefs
from runner.service_loop import ServiceLoop
from tests.unit.runner.test_balancing import TG, Group


class FakeTargetGroups:
    def __init__(self) -> None:
        self.targets: dict[tuple[str, int], str] = {}  # target -> state
        self.deregistered: list[tuple[str, int]] = []

    def group(self, arn: str) -> Group | None:
        return Group(arn) if arn == TG else None

    async def register(self, arn: str, target: tuple[str, int]) -> None:
        self.targets.setdefault(target, "initial")

    async def deregister(self, arn: str, target: tuple[str, int]) -> None:
        self.targets.pop(target, None)
        self.deregistered.append(target)

    def health(self, arn: str, target: tuple[str, int]) -> tuple[str, str]:
        return self.targets.get(target, "unused"), ""


async def test_a_task_is_a_target_while_it_runs_and_drains_before_it_stops(tmp_path) -> None:
    config = Config(docker_host="none")
    store = Store.open(tmp_path / "s.db", part.MIGRATIONS)
    groups = FakeTargetGroups()
    try:
        await clusters.create(store, config, {"clusterName": "c"})
        defn = {
            "family": "web",
            "networkMode": "awsvpc",
            "containerDefinitions": [
                {"name": "app", "image": "busybox", "memory": 16, "portMappings": [{"containerPort": 8080}]}
            ],
        }
        await taskdefs.OPERATIONS["RegisterTaskDefinition"](store, config, defn)
        lbs = [{"targetGroupArn": TG, "containerName": "app", "containerPort": 8080}]
        params = {
            "cluster": "c",
            "serviceName": "web",
            "taskDefinition": "web",
            "desiredCount": 1,
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"]}},
            "loadBalancers": lbs,
            "healthCheckGracePeriodSeconds": 10,
        }
        out = await services.create(store, config, params, target_groups=groups)
        assert out["service"]["loadBalancers"] == lbs
        assert out["service"]["healthCheckGracePeriodSeconds"] == 10
        web = data.service(store, "c", "web")
        dep = web.primary
        assert "loadBalancers" not in out["service"]["deployments"][0]  # kept for the loop, not shown

        loop = ServiceLoop(store, config, targets=groups)
        new = data.NewTask(
            id=uuid.uuid4().hex,
            cluster="c",
            instance_id="i",
            definition=dep["definition"],
            launch_type="EC2",
            created_at=time.time(),
            group="service:web",
            started_by=dep["id"],
        )
        [task] = await data.record_tasks(store, lambda: [new])
        msgs: list[str] = []

        async def sync() -> dict:
            found = [t for t in [data.task(store, task.id)] if t is not None]
            return await loop._sync_targets(
                "c", "web", web.spec, list(web.deployments), found, time.time(), msgs
            )

        assert await sync() == {} and groups.targets == {}  # not running yet
        await data.update_task(
            store,
            task.id,
            last_status="RUNNING",
            network=data.TaskNetwork(ip="10.1.0.9"),
            started_at=time.time(),
        )
        judged = await sync()
        assert groups.targets == {("10.1.0.9", 8080): "initial"}
        assert (
            judged[task.id].health == "UNKNOWN" and judged[task.id].checked
        )  # not healthy before the group says
        assert msgs == [f"(service web) registered 1 targets in (target-group {TG})"]
        groups.targets[("10.1.0.9", 8080)] = "healthy"
        assert (await sync())[task.id].health == "HEALTHY"
        groups.targets[("10.1.0.9", 8080)] = "unhealthy"
        assert (await sync())[task.id].health == "UNKNOWN"  # within the grace period

        msgs.clear()
        await data.request_task_stop(store, task.id, "UserInitiated", "stop")  # behind the scheduler's back
        before = time.time()
        await sync()
        assert groups.deregistered == [("10.1.0.9", 8080)]
        [reg] = data.targets_of_task(store, task.id)
        assert reg.drain_until is not None and reg.drain_until >= before + 30  # the group's delay
        assert msgs == [
            f"(service web) deregistered 1 targets in (target-group {TG})",
            "(service web) has begun draining connections on 1 tasks.",
        ]
        await sync()
        assert groups.deregistered == [("10.1.0.9", 8080)]  # once
        await data.update_task(store, task.id, last_status="STOPPED")
        await sync()
        assert data.targets_of_task(store, task.id) == [reg]  # kept until the drain ends
    finally:
        store.close()
