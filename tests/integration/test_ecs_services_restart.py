"""ECS services across a control plane killed with SIGKILL and started again."""

from __future__ import annotations

import time

from tests.integration.test_ecs_services import containers, drain, service_tasks, sleeper, stable, wait_for
from tests.support.images import busybox_image
from tests.support.registry import docker_push


def test_after_sigkill_and_restart_services_resume_without_duplicating_tasks(fresh_dockyard):
    server = fresh_dockyard.start()
    docker_push(server, busybox_image(), "svc-busybox:latest")
    ecs = server.client("ecs")
    ecs.create_cluster(clusterName="restart")
    try:
        arn = sleeper(ecs, "restart", "svc-busybox:latest")
        ecs.create_service(cluster="restart", serviceName="keep", taskDefinition=arn, desiredCount=2)
        wait_for(lambda: stable(ecs, "restart", "keep"), timeout=60, what="steady before the kill")
        tasks_before = {t["taskArn"] for t in service_tasks(ecs, "restart", "keep")}
        containers_before = {c["id"] for c in containers("restart")}
        assert len(tasks_before) == 2 and len(containers_before) == 2

        server.kill()
        server.start()
        ecs = server.client("ecs")
        s = wait_for(lambda: stable(ecs, "restart", "keep"), timeout=60, what="steady after the restart")
        time.sleep(3)  # a few reconcile passes: nothing new may start
        assert {t["taskArn"] for t in service_tasks(ecs, "restart", "keep")} == tasks_before
        assert ecs.list_tasks(cluster="restart", desiredStatus="STOPPED")["taskArns"] == []
        assert {c["id"] for c in containers("restart")} == containers_before
        assert s["runningCount"] == 2 and len(s["deployments"]) == 1

        # and it still holds its desired count afterwards
        ecs.update_service(cluster="restart", service="keep", desiredCount=3)
        wait_for(lambda: stable(ecs, "restart", "keep"), timeout=60, what="scaled after the restart")
        assert len(containers("restart")) == 3
    finally:
        drain(ecs, "restart")
