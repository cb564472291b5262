"""``dockyard canary`` with real traffic through ``dockyard up``: real Docker, real Envoy sidecars,
the real ``aws`` CLI reading the results back. One Service Connect service ``web`` (answering
``/cgi-bin/flaky`` with its ``VERSION``, or 500 on ``FAIL_PERCENT`` percent of requests) called by
``front`` under continuous load (curl over keep-alive from front's network namespace).

1. A v2 that answers 500 on 20% of requests: ``dockyard canary web --to v2 --steps 50,100
   --interval 10s --max-error-rate 1%`` judges the 50% step against v1 over the same window and
   rolls back at once (exit 1); DescribeServiceDeployments shows ROLLBACK_SUCCESSFUL with the
   analysis' reason; the reason is a service event; traffic is back on v1 and no request fails
   once the rollback completed.
2. A good v3: promoted through both steps (exit 0), every step's verdict an event, zero failed
   requests during the whole canary, then only v3 answers.

The session server's sidecars flush their stats every 2 s (tests/conftest.py); a step is judged
10 s after its interval ended (the metric store's 10 s buckets).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from dockyard.aws.protocol import ECS
from dockyard.client import ApiError, Client
from tests.integration.test_ecs_service_connect import NET, namespace
from tests.integration.test_ecs_services import service_tasks, wait_for
from tests.integration.test_ecs_tasks import own_cluster
from tests.integration.test_mesh_service_connect import app_container, curl_alias, running
from tests.support.images import echo_flaky_image
from tests.support.server import BIN, Dockyard

PATH = "/cgi-bin/flaky"
BATCH = 20


@dataclass
class Site:
    cluster: str
    alias: str
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
    ns = namespace(dockyard, f"can-{uuid.uuid4().hex[:6]}.local")["Name"]
    family = f"can-web-{uuid.uuid4().hex[:6]}"
    alias = f"web.{ns}"
    ecs = dockyard.client("ecs")
    sc = {"enabled": True, "namespace": ns, "services": [
        {"portName": "web", "discoveryName": "web", "clientAliases": [{"port": 80, "dnsName": alias}]}]}
    with own_cluster(dockyard, "canary") as cluster:
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
        yield Site(cluster, alias, family, app)


@dataclass
class Load:
    """Continuous requests from front to web (batches over one keep-alive connection), every
    answer kept with the time its batch ended."""

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


def canary(dockyard: Dockyard, site: Site, td: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dockyard"), "canary", "web", "--cluster", site.cluster, "--to", td, *options,
         "--timeout", "300", "--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url],
        capture_output=True, text=True, timeout=360,
    )


def newest(dockyard: Dockyard, site: Site) -> dict[str, Any]:
    [brief, *_] = dockyard.aws("ecs", "list-service-deployments", "--cluster", site.cluster,
                               "--service", "web")["serviceDeployments"]
    [found] = dockyard.aws("ecs", "describe-service-deployments", "--service-deployment-arns",
                           brief["serviceDeploymentArn"])["serviceDeployments"]
    return found


def newest_deployments(dockyard: Dockyard, site: Site) -> list[dict[str, Any]]:
    return dockyard.aws("ecs", "list-service-deployments", "--cluster", site.cluster,
                        "--service", "web")["serviceDeployments"]


def events(dockyard: Dockyard, site: Site) -> list[str]:
    out = dockyard.aws("ecs", "describe-services", "--cluster", site.cluster, "--services", "web")
    return [e["message"] for e in out["services"][0]["events"]]


def only(site: Site, version: str) -> None:
    wait_for(lambda: set(curl_alias(site.app, site.alias, 20, path=PATH).split()) == {version}, timeout=60,
             what=f"only {version} answering")


def test_bad_canary_options_are_refused_before_anything_is_sent(dockyard: Dockyard, site: Site):
    for options, words in ((["--steps", "50,10,100"], "--steps must increase"),
                           (["--steps", "10,50"], "--steps must end at 100"),
                           (["--interval", "soon"], "a duration such as 30s"),
                           (["--max-error-rate", "200%"], "from 0% to 100%")):
        proc = canary(dockyard, site, f"{site.family}:1", *options)
        assert proc.returncode != 0 and words in proc.stderr, (options, proc.stderr)
    # the field itself, as any client may send it (the aws CLI refuses members AWS lacks)
    key, secret = dockyard.credentials
    client = Client(dockyard.control_url, key, secret)
    base = {"cluster": site.cluster, "service": "web", "taskDefinition": f"{site.family}:1"}
    for config, words in (
        ({"strategy": "LINEAR", "dockyardCanary": {"steps": [50, 100]}},
         "dockyardCanary can only be used with the CANARY deployment strategy, not LINEAR"),
        ({"strategy": "CANARY", "dockyardCanary": {"steps": [50, 100], "intervalSeconds": 0}},
         "dockyardCanary.intervalSeconds must be a number from 1 to 86400"),
        ({"strategy": "CANARY", "dockyardCanary": {"steps": [0.01, 100]}},
         "each percent must be from 0.1 to 100"),
    ):
        with pytest.raises(ApiError) as caught:
            client.call(ECS, "UpdateService", {**base, "deploymentConfiguration": config})
        error = caught.value
        assert error.code == "InvalidParameterException" and words in error.message, error
    assert len(newest_deployments(dockyard, site)) == 1  # nothing was deployed


def test_a_failing_canary_is_rolled_back_by_the_analysis(dockyard: Dockyard, site: Site, load: Load):
    v2 = register(dockyard, site.family, "web-v2", fail_percent=20)
    proc = canary(dockyard, site, v2, "--steps", "50,100", "--interval", "10s", "--max-error-rate", "1%",
                  "--max-p99", "500ms")
    print(proc.stdout)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "canary not promoted: ROLLBACK_SUCCESSFUL" in proc.stdout, proc.stdout
    assert re.search(r"rev \d+: \d+ req [\d.]+% 5xx", proc.stdout), proc.stdout  # live figures
    done = newest(dockyard, site)
    assert done["status"] == "ROLLBACK_SUCCESSFUL", done
    assert done["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT"  # rolled back at its first step
    reason = done["rollback"]["reason"]
    assert reason.startswith("canary at 50% rolled back: the canary's 5xx rate"), reason
    assert "exceeds the baseline's 0.00% by more than 1.00%" in reason, reason
    assert any(reason in m for m in events(dockyard, site))
    shown = subprocess.run(
        [str(BIN / "dockyard"), "deployments", "web", "--cluster", site.cluster, "--limit", "1",
         "--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url],
        capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0 and shown.stdout.splitlines()[0].endswith("ROLLBACK_SUCCESSFUL  CANARY")
    assert f"  rollback {reason} -> " in shown.stdout, shown.stdout
    assert any(a == "failed web-v2" or a.startswith("HTTP 500") for a in load.answers()), \
        "v2 never served its canary share"
    rolled = time.time()
    only(site, "web-v1")
    time.sleep(5)
    after = load.answers(rolled)
    assert after and load.failed(rolled) == [], load.failed(rolled)[:5]
    assert set(after) == {"web-v1"}


def test_a_good_canary_is_promoted_step_by_step(dockyard: Dockyard, site: Site, load: Load):
    v3 = register(dockyard, site.family, "web-v3")
    started = time.time()
    proc = canary(dockyard, site, v3, "--steps", "50,100", "--interval", "10s")
    print(proc.stdout)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "canary promoted: SUCCESSFUL" in proc.stdout, proc.stdout
    messages = events(dockyard, site)
    assert any("canary at 50% passed: 5xx 0.00% (baseline 0.00%)" in m for m in messages), messages[:10]
    assert any("canary promoted: every step passed" in m for m in messages), messages[:10]
    only(site, "web-v3")
    assert {"web-v1", "web-v3"} <= set(load.answers(started)), "both revisions answered during the canary"
    failed_at = [(round(at, 1), a) for at, batch in load.batches if at >= started for a in batch
                 if not a.startswith("web-v")]
    if failed_at:  # when they failed, against the deployment's events (printed for the log)
        svc = dockyard.aws("ecs", "describe-services", "--cluster", site.cluster, "--services", "web")
        for e in svc["services"][0]["events"][:12]:
            print("event at", round(float(e["createdAt"]), 1), e["message"][:100])
    assert failed_at == [], failed_at
    done = newest(dockyard, site)
    assert done["status"] == "SUCCESSFUL"
    assert done["targetServiceRevision"]["requestedProductionTrafficWeight"] == 100
    shown = subprocess.run(
        [str(BIN / "dockyard"), "deployments", "web", "--cluster", site.cluster, "--limit", "2",
         "--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url],
        capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].endswith("SUCCESSFUL  CANARY") and "[CLEAN_UP]" in lines[1], shown.stdout
    assert f"{v3.rsplit('/', 1)[-1]} 100%" in lines[2], shown.stdout
