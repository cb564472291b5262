"""ECS traffic-shifting deployments through ``dockyard up`` with the real aws CLI, real Docker and
real Envoy sidecars: one Service Connect service ``web`` (answering ``/cgi-bin/flaky`` with its
``VERSION``, or 500 on ``FAIL_PERCENT`` percent of requests) called by ``front`` under continuous
load (curl over keep-alive from front's network namespace, through its sidecar).

In order, on the same service (the session server's deployment minute is one second):

1. bad input is refused with InvalidParameterException and clear messages;
2. v2 through LINEAR (50% steps): both revisions answer during the step, then only v2; zero
   failed requests; ``dockyard deployments`` shows it SUCCESSFUL;
3. v3 through BLUE_GREEN with a PAUSE hook at POST_TEST_TRAFFIC_SHIFT: the deployment holds
   there, test traffic (the alias's ``testTrafficRules`` header) on v3, production on v2, until
   ContinueServiceDeployment; then all on v3; zero failed requests;
4. v4, which answers 500 on 20% of requests, through CANARY with ``deploymentConfiguration.alarms``:
   an alarm made with ``aws cloudwatch put-metric-alarm`` on Service Connect's
   ``HTTPCode_Target_5XX_Count`` by ``DiscoveryName`` (the Service Connect discoveryName, not
   the ECS service name) goes to ALARM during the canary's bake time and the deployment is
   rolled back: ROLLBACK_SUCCESSFUL with ``rollback`` and ``alarms.triggeredAlarmNames``, the
   service's events, all traffic back on v3 and no failed request after the rollback.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.test_ecs_service_connect import NET, namespace
from tests.integration.test_ecs_services import service_tasks, wait_for
from tests.integration.test_ecs_tasks import own_cluster
from tests.integration.test_mesh_service_connect import app_container, curl_alias, running
from tests.support.images import echo_flaky_image
from tests.support.server import Dockyard

PATH = "/cgi-bin/flaky"
HEADER = "x-dockyard-test"
BATCH = 20


@dataclass
class Site:
    cluster: str
    alias: str
    discovery: str
    family: str
    app: str  # front's app container


def register(dockyard: Dockyard, family: str, version: str, fail_percent: int = 0) -> str:
    container = {"name": "app", "image": echo_flaky_image(), "memory": 32, "essential": True,
                 "environment": [{"name": "VERSION", "value": version},
                                 {"name": "FAIL_PERCENT", "value": str(fail_percent)}],
                 "portMappings": [{"containerPort": 8080, "name": "web", "appProtocol": "http"}]}
    out = dockyard.aws("ecs", "register-task-definition", "--family", family, "--network-mode", "awsvpc",
                       "--container-definitions", json.dumps([container]))
    return out["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture(scope="module")
def site(dockyard: Dockyard) -> Iterator[Site]:
    with site_of(dockyard) as found:
        yield found


@contextlib.contextmanager
def site_of(dockyard: Dockyard) -> Iterator[Site]:
    """A cluster of its own with ``web`` (v1, Service Connect, a test traffic header) and its
    client ``front``, once front reaches web through its sidecar (bench/deploy.py uses it too)."""
    ns = namespace(dockyard, f"dep-{uuid.uuid4().hex[:6]}.local")["Name"]
    suffix = uuid.uuid4().hex[:6]
    discovery, family = f"web{suffix}", f"dep-web-{suffix}"
    alias = f"{discovery}.{ns}"
    ecs = dockyard.client("ecs")
    sc = {"enabled": True, "namespace": ns, "services": [{
        "portName": "web", "discoveryName": discovery,
        "clientAliases": [{"port": 80, "dnsName": alias,
                           "testTrafficRules": {"header": {"name": HEADER, "value": {"exact": "green"}}}}]}]}
    with own_cluster(dockyard, "deployments") as cluster:
        v1 = register(dockyard, family, "web-v1")
        dockyard.aws("ecs", "create-service", "--cluster", cluster, "--service-name", "web",
                     "--task-definition", v1, "--desired-count", "1", "--network-configuration", NET,
                     "--service-connect-configuration", json.dumps(sc))
        front = register(dockyard, f"{family}-front", "front")
        dockyard.aws("ecs", "create-service", "--cluster", cluster, "--service-name", "front",
                     "--task-definition", front, "--desired-count", "1", "--network-configuration", NET,
                     "--service-connect-configuration", json.dumps({"enabled": True, "namespace": ns}))
        for name in ("web", "front"):
            wait_for(lambda name=name: running(ecs, cluster, name), timeout=180, what=f"{name} running")
        [task] = service_tasks(ecs, cluster, "front")
        app = app_container(task["taskArn"])
        wait_for(lambda: curl_alias(app, alias, path=PATH).strip() == "web-v1", timeout=60,
                 what=f"{alias} answering")
        yield Site(cluster, alias, discovery, family, app)


@dataclass
class Load:
    """Continuous requests from front to web (batches of 20 over one keep-alive connection),
    every answer kept with the time its batch ended."""

    site: Site
    batches: list[tuple[float, list[str]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            out = curl_alias(self.site.app, self.site.alias, BATCH, "-w", "|%{http_code}\n", path=PATH)
            answers = [body if code == "200" else f"HTTP {code} {body}"
                       for body, code in re.findall(r"([^\n|]*)\n?\|(\d{3})\n", out)]
            self.batches.append((time.time(), answers + ["no answer"] * (BATCH - len(answers))))

    def answers(self, since: float = 0.0) -> list[str]:
        return [a for at, batch in self.batches if at >= since for a in batch]

    def failed(self, since: float = 0.0) -> list[str]:
        """Answers that are not a version's 200."""
        return [a for a in self.answers(since) if not a.startswith("web-v")]


@pytest.fixture
def load(site: Site) -> Iterator[Load]:
    ld = Load(site)
    thread = threading.Thread(target=ld.run, daemon=True)
    thread.start()
    wait_for(lambda: ld.batches, timeout=30, what="the load running")
    try:
        yield ld
    finally:
        ld.stop.set()
        thread.join(timeout=30)


def update(dockyard: Dockyard, site: Site, td: str, config: dict[str, Any]) -> dict[str, Any]:
    return dockyard.aws("ecs", "update-service", "--cluster", site.cluster, "--service", "web",
                        "--task-definition", td, "--deployment-configuration", json.dumps(config))


def describe(dockyard: Dockyard, site: Site) -> dict[str, Any]:
    out = dockyard.aws("ecs", "describe-services", "--cluster", site.cluster, "--services", "web")
    return out["services"][0]


def newest(dockyard: Dockyard, site: Site) -> dict[str, Any]:
    [brief, *_] = dockyard.aws("ecs", "list-service-deployments", "--cluster", site.cluster,
                               "--service", "web")["serviceDeployments"]
    [found] = dockyard.aws("ecs", "describe-service-deployments", "--service-deployment-arns",
                           brief["serviceDeploymentArn"])["serviceDeployments"]
    return found


def ended(dockyard: Dockyard, site: Site, status: str, timeout: float = 240) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        d = newest(dockyard, site)
        assert d["status"] in ("IN_PROGRESS", "ROLLBACK_IN_PROGRESS", status), d
        return d if d["status"] == status else None

    return wait_for(done, timeout=timeout, what=f"the deployment {status}")


def steady_on(site: Site, version: str) -> None:
    wait_for(lambda: set(curl_alias(site.app, site.alias, 20, path=PATH).split()) == {version}, timeout=60,
             what=f"only {version} answering")


def test_bad_deployment_configurations_are_refused(dockyard: Dockyard, site: Site):
    td = register(dockyard, site.family, "web-v1")  # revision 2 of the family; v1 is revision 1
    cases = {
        "unknown alarm": ({"strategy": "CANARY", "alarms": {"alarmNames": ["no-such-alarm-x"], "enable": True,
                                                            "rollback": True}}, "no-such-alarm-x"),
        "canary with linear": ({"strategy": "LINEAR", "canaryConfiguration": {"canaryPercent": 10}},
                               "canaryConfiguration can only be used with the CANARY"),
        "percent too small": ({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 0.05}},
                              "from 0.1 to 100"),
        "percent too large": ({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 150}},
                              "from 0.1 to 100"),
        "bake too long": ({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1441}, "from 0 to 1440"),
        "lambda hook": ({"strategy": "BLUE_GREEN", "lifecycleHooks": [
            {"targetType": "AWS_LAMBDA", "hookTargetArn": "arn:aws:lambda:us-east-1:000000000000:function:f",
             "lifecycleStages": ["POST_SCALE_UP"]}]}, "no Lambda"),
    }
    for what, (config, words) in cases.items():
        proc = dockyard.aws("ecs", "update-service", "--cluster", site.cluster, "--service", "web",
                            "--task-definition", td, "--deployment-configuration", json.dumps(config),
                            check=False)
        assert proc.returncode != 0 and "InvalidParameterException" in proc.stderr, (what, proc.stderr)
        assert words in proc.stderr, (what, proc.stderr)
    # a traffic-shifting strategy on a service without Service Connect
    proc = dockyard.aws("ecs", "create-service", "--cluster", site.cluster, "--service-name", "plain",
                        "--task-definition", td, "--desired-count", "0", "--network-configuration", NET,
                        "--deployment-configuration", json.dumps({"strategy": "LINEAR"}), check=False)
    assert proc.returncode != 0 and "InvalidParameterException" in proc.stderr, proc.stderr
    assert "needs a serviceConnectConfiguration" in proc.stderr, proc.stderr
    svc = describe(dockyard, site)
    assert len(svc["deployments"]) == 1 and svc["taskDefinition"].endswith(f"{site.family}:1")


def test_linear_promotes_a_good_revision_with_no_failed_request(dockyard: Dockyard, site: Site, load: Load):
    v2 = register(dockyard, site.family, "web-v2")
    update(dockyard, site, v2, {"strategy": "LINEAR", "bakeTimeInMinutes": 1,
                                "linearConfiguration": {"stepPercent": 50, "stepBakeTimeInMinutes": 15}})

    def at_half() -> dict[str, Any] | None:
        d = newest(dockyard, site)
        target = d["targetServiceRevision"]
        return d if d.get("lifecycleStage") == "PRODUCTION_TRAFFIC_SHIFT" and \
            target["requestedProductionTrafficWeight"] == 50 else None

    half = wait_for(at_half, timeout=180, what="the 50% step")
    assert half["status"] == "IN_PROGRESS" and half["sourceServiceRevisions"][0][
        "requestedProductionTrafficWeight"] == 50
    stepped = time.time()
    wait_for(lambda: {"web-v1", "web-v2"} <= set(load.answers(stepped)), timeout=30,
             what="both revisions answering at 50%")
    done = ended(dockyard, site, "SUCCESSFUL")
    assert done["lifecycleStage"] == "CLEAN_UP" and "finishedAt" in done
    steady_on(site, "web-v2")
    assert load.failed() == [], load.failed()[:5]
    svc = describe(dockyard, site)
    messages = [e["message"] for e in svc["events"]]
    assert any("shifted 50% of production traffic" in m for m in messages), messages[:10]
    [revision] = dockyard.aws("ecs", "describe-service-revisions", "--service-revision-arns",
                              done["targetServiceRevision"]["arn"])["serviceRevisions"]
    assert revision["taskDefinition"] == v2
    proc = dockyard.cli("deployments", "web", "--cluster", site.cluster, "--json", "--data-dir",
                        str(dockyard.data_dir), "--endpoint-url", dockyard.control_url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["status"] == "SUCCESSFUL"
    proc = dockyard.cli("deployments", "web", "--cluster", site.cluster, "--data-dir",
                        str(dockyard.data_dir), "--endpoint-url", dockyard.control_url)
    assert proc.returncode == 0 and "SUCCESSFUL" in proc.stdout and "CLEAN_UP" in proc.stdout, proc.stdout


def test_blue_green_holds_at_a_pause_hook_until_continued(dockyard: Dockyard, site: Site, load: Load):
    v3 = register(dockyard, site.family, "web-v3")
    update(dockyard, site, v3, {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 2, "lifecycleHooks": [
        {"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}]})

    def paused() -> dict[str, Any] | None:
        d = newest(dockyard, site)
        return d if d.get("lifecycleHookDetails") else None

    held = wait_for(paused, timeout=180, what="the deployment waiting at its hook")
    assert held["lifecycleStage"] == "POST_TEST_TRAFFIC_SHIFT" and held["status"] == "IN_PROGRESS"
    [hook] = held["lifecycleHookDetails"]
    assert hook["status"] == "AWAITING_ACTION" and hook["targetType"] == "PAUSE"
    # test traffic (the alias's header) on green, production still on blue; it holds
    wait_for(lambda: set(curl_alias(site.app, site.alias, 10, "-H", f"{HEADER}: green", path=PATH).split())
             == {"web-v3"}, timeout=30, what="test traffic on v3")
    time.sleep(3)  # three deployment minutes: a hook holds its stage however long it takes
    assert set(curl_alias(site.app, site.alias, 20, path=PATH).split()) == {"web-v2"}
    assert newest(dockyard, site)["lifecycleStage"] == "POST_TEST_TRAFFIC_SHIFT"
    refused = dockyard.aws("ecs", "continue-service-deployment", "--service-deployment-arn",
                           held["serviceDeploymentArn"], "--hook-id", "hook-9", check=False)
    assert refused.returncode != 0 and "not awaiting action" in refused.stderr, refused.stderr
    dockyard.aws("ecs", "continue-service-deployment", "--service-deployment-arn",
                 held["serviceDeploymentArn"], "--hook-id", hook["hookId"])
    done = ended(dockyard, site, "SUCCESSFUL")
    assert done["targetServiceRevision"]["requestedProductionTrafficWeight"] == 100
    steady_on(site, "web-v3")
    assert load.failed() == [], load.failed()[:5]


def put_alarm(dockyard: Dockyard, name: str, dimensions: dict[str, str]) -> None:
    """An alarm on any 5xx answered by ``web`` in a 10 s period (missing data: not breaching)."""
    dockyard.aws("cloudwatch", "put-metric-alarm", "--alarm-name", name, "--namespace", "AWS/ECS",
                 "--metric-name", "HTTPCode_Target_5XX_Count",
                 "--dimensions", *[f"Name={k},Value={v}" for k, v in dimensions.items()],
                 "--statistic", "Sum", "--period", "10", "--evaluation-periods", "1", "--threshold", "0",
                 "--comparison-operator", "GreaterThanThreshold", "--treat-missing-data", "notBreaching")
    wait_for(lambda: alarm_state(dockyard, name) == "OK", timeout=60, what=f"{name} OK")


def alarm_state(dockyard: Dockyard, name: str) -> str:
    [alarm] = dockyard.aws("cloudwatch", "describe-alarms", "--alarm-names", name)["MetricAlarms"]
    return alarm["StateValue"]


def deployment(dockyard: Dockyard, site: Site, dep_id: str) -> dict[str, Any] | None:
    """The service deployment of the service's deployment ``dep_id`` (``ecs-svc/<digits>``)."""
    listed = dockyard.aws("ecs", "list-service-deployments", "--cluster", site.cluster,
                          "--service", "web")["serviceDeployments"]
    arn = next((d["serviceDeploymentArn"] for d in listed
                if d["serviceDeploymentArn"].endswith("/" + dep_id.rsplit("/", 1)[-1])), None)
    if arn is None:
        return None
    [found] = dockyard.aws("ecs", "describe-service-deployments", "--service-deployment-arns",
                           arn)["serviceDeployments"]
    return found


def rolled_back(dockyard: Dockyard, site: Site, dep_id: str, name: str, good: str,
                load: Load) -> dict[str, Any]:
    """The service deployment ``dep_id`` once ROLLBACK_SUCCESSFUL, checked as ECS shows an alarm
    rollback; the service back on one completed deployment, answering ``good`` only, with no
    failed request after that."""
    def done() -> dict[str, Any] | None:
        d = deployment(dockyard, site, dep_id)
        assert d is None or d["status"] in ("IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"), d
        return d if d is not None and d["status"] == "ROLLBACK_SUCCESSFUL" else None

    wait_for(done, timeout=180, what="the deployment ROLLBACK_SUCCESSFUL")

    def settled() -> bool:
        deps = describe(dockyard, site)["deployments"]
        return len(deps) == 1 and deps[0]["rolloutState"] == "COMPLETED" and deps[0]["id"] != dep_id

    wait_for(settled, timeout=120, what="the service on one completed deployment again")
    back = time.time()
    found = deployment(dockyard, site, dep_id)
    assert found is not None and found["status"] == "ROLLBACK_SUCCESSFUL", found
    assert found["alarms"]["status"] == "TRIGGERED", found
    assert found["alarms"]["triggeredAlarmNames"] == [name], found
    assert name in found["rollback"]["reason"] and found["rollback"]["startedAt"], found["rollback"]
    steady_on(site, good)
    wait_for(lambda: len([b for b in load.batches if b[0] > back + 1]) >= 10, timeout=60,
             what="ten batches after the rollback")
    assert load.failed(back + 1) == [], load.failed(back + 1)[:5]
    messages = [e["message"] for e in describe(dockyard, site)["events"]]
    fired = f"deployment failed: Alarm(s) {name} went into ALARM state"
    assert any(fired in m for m in messages), messages[:10]
    assert any("rolling back to deployment" in m for m in messages), messages[:10]
    return found


def test_a_failing_canary_is_rolled_back_by_its_alarm(dockyard: Dockyard, site: Site, load: Load):
    name = f"dep-5xx-{uuid.uuid4().hex[:6]}"
    put_alarm(dockyard, name, {"DiscoveryName": site.discovery})
    v4 = register(dockyard, site.family, "web-v4", fail_percent=20)
    out = update(dockyard, site, v4, {"strategy": "CANARY", "bakeTimeInMinutes": 60,
                                      "canaryConfiguration": {"canaryPercent": 30,
                                                              "canaryBakeTimeInMinutes": 120},
                                      "alarms": {"alarmNames": [name], "enable": True, "rollback": True}})
    wait_for(lambda: "web-v4" in " ".join(load.answers()), timeout=180, what="the canary answering")
    done = rolled_back(dockyard, site, out["service"]["deployments"][0]["id"], name, "web-v3", load)
    assert done["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT"  # during the canary's bake time
    assert done["rollback"]["serviceRevisionArn"] == done["sourceServiceRevisions"][0]["arn"]
    assert done["targetServiceRevision"]["requestedProductionTrafficWeight"] == 0
    assert describe(dockyard, site)["taskDefinition"] != v4
    dockyard.aws("cloudwatch", "delete-alarms", "--alarm-names", name)


def test_a_rolling_deployment_is_rolled_back_by_its_alarm(dockyard: Dockyard, site: Site, load: Load):
    name = f"dep-roll-{uuid.uuid4().hex[:6]}"
    put_alarm(dockyard, name, {"ClusterName": site.cluster, "ServiceName": "web"})  # ECS's other form
    v5 = register(dockyard, site.family, "web-v5", fail_percent=50)
    out = update(dockyard, site, v5, {"strategy": "ROLLING", "alarms": {"alarmNames": [name], "enable": True,
                                                                        "rollback": True}})
    failing = out["service"]["deployments"][0]["id"]
    monitoring = wait_for(lambda: deployment(dockyard, site, failing), timeout=30, what="its record")
    assert monitoring["alarms"]["status"] in ("MONITORING", "TRIGGERED"), monitoring["alarms"]
    done = rolled_back(dockyard, site, failing, name, "web-v3", load)
    assert "lifecycleStage" not in done
    [now] = describe(dockyard, site)["deployments"]
    assert now["taskDefinition"] != v5 and done["rollback"]["serviceRevisionArn"].endswith(
        now["id"].rsplit("/", 1)[-1])
    dockyard.aws("cloudwatch", "delete-alarms", "--alarm-names", name)
