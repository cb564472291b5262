"""Deployment benchmark: how soon after its alarm fires a failing canary is rolled back.

Usage: ``PATH=.venv/bin:$PATH .venv/bin/python bench/deploy.py [--runs 3] [--fail-percent 20]``

It starts its own ``dockyard up`` (sidecar stats every 2 s, alarms judged every second, a
deployment minute of one second: the integration tests' settings) and, with the integration
test's own set-up (``tests.integration.test_ecs_deployments.site_of``: a Service Connect
service ``web`` and its client ``front``, real Docker tasks and Envoy sidecars), sends
continuous requests from front to web. Then per run: a new alarm (``put-metric-alarm`` on
``HTTPCode_Target_5XX_Count`` by web's ``DiscoveryName``, Sum over 10 s > 0, 1 evaluation
period), a new revision that answers 500 on ``--fail-percent`` percent of requests, and an
UpdateService with strategy CANARY (30%, baked 300 minutes: only the alarm ends it) and the
alarm in ``deploymentConfiguration.alarms`` with rollback. Timed, on one clock:

* first 5xx: the end of the first request batch (20 requests) with a failed answer;
* alarm: the alarm's OK -> ALARM StateUpdate (DescribeAlarmHistory's timestamp: when the
  evaluation that changed it ran);
* rollback decided: the service event ``rolling back to deployment`` (its ``createdAt``: the
  service loop's pass that read the alarm);
* traffic back: front's sidecar Envoy has the route back on the baseline alone (its admin
  ``config_dump`` polled every 20 ms from inside front's network namespace): the rolled-back
  weights pushed over xDS and applied.

The figure is "alarm evaluation -> rollback start": alarm -> decided and alarm -> traffic back,
in seconds and in evaluation periods (the issue's target: under 2). It prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.test_ecs_deployments import (  # noqa: E402
    Load,
    Site,
    put_alarm,
    register,
    site_of,
    update,
)
from tests.integration.test_ecs_services import wait_for  # noqa: E402
from tests.support.server import Dockyard  # noqa: E402

PERIOD = 10  # the alarm's period (s)
ENV = {"DOCKYARD_MESH_STATS_FLUSH_INTERVAL": "2", "DOCKYARD_ALARM_EVALUATION_INTERVAL": "1",
       "DOCKYARD_DEPLOYMENT_MINUTE_SECONDS": "1"}

# Runs in front's network namespace: prints [time, weights of each production route] on change.
WATCH = """
import json, sys, time, urllib.request
url = "http://127.0.0.1:15000/config_dump?resource=dynamic_route_configs"
last = None
while True:
    try:
        dump = json.loads(urllib.request.urlopen(url, timeout=2).read())
    except Exception:
        time.sleep(0.05)
        continue
    routes = []
    for c in dump.get("configs", []):
        for vh in c.get("route_config", {}).get("virtual_hosts", []):
            for r in vh.get("routes", []):
                wc = r.get("route", {}).get("weighted_clusters")
                if wc and not r.get("match", {}).get("headers"):
                    routes.append(sorted([x["name"], int(x.get("weight", 0))] for x in wc["clusters"]))
    if routes != last:
        print(json.dumps([time.time(), routes]), flush=True)
        last = routes
    time.sleep(0.02)
"""


class RouteWatch:
    """front's sidecar's production routes, as they change (``changes``: (time, routes))."""

    def __init__(self, app: str) -> None:
        pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", app], capture_output=True,
                             text=True, check=True).stdout.strip()
        self.proc = subprocess.Popen(["nsenter", "-t", pid, "-n", sys.executable, "-c", WATCH],
                                     stdout=subprocess.PIPE, text=True)
        self.changes: list[tuple[float, list[list[list[Any]]]]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            at, routes = json.loads(line)
            self.changes.append((at, routes))

    def split_at(self, since: float) -> float | None:
        """When a route first sent traffic to two clusters after ``since``."""
        return next((at for at, routes in self.changes if at >= since and any(
            sum(1 for _, w in r if w > 0) >= 2 for r in routes)), None)

    def back_at(self, since: float) -> float | None:
        """When, after a split seen since ``since``, every route had one cluster again."""
        split = self.split_at(since)
        if split is None:
            return None
        return next((at for at, routes in self.changes if at > split and routes and all(
            sum(1 for _, w in r if w > 0) == 1 for r in routes)), None)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def first_failure(load: Load, since: float) -> float | None:
    return next((at for at, batch in list(load.batches) if at >= since
                 and any(not a.startswith("web-v") for a in batch)), None)


def one_run(dockyard: Dockyard, site: Site, load: Load, watch: RouteWatch, n: int, fail: int) -> dict:
    name = f"bench-5xx-{uuid.uuid4().hex[:6]}"
    put_alarm(dockyard, name, {"DiscoveryName": site.discovery})
    bad = register(dockyard, site.family, f"web-v{n + 2}", fail_percent=fail)
    started = time.time()
    update(dockyard, site, bad, {"strategy": "CANARY", "bakeTimeInMinutes": 0,
                                 "canaryConfiguration": {"canaryPercent": 30, "canaryBakeTimeInMinutes": 300},
                                 "alarms": {"alarmNames": [name], "enable": True, "rollback": True}})
    back = wait_for(lambda: watch.back_at(started), timeout=240, what="traffic back on the baseline")
    cw, ecs = dockyard.client("cloudwatch"), dockyard.client("ecs")

    def fired() -> float | None:
        items = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
        at = [h["Timestamp"].timestamp() for h in items  # (a new alarm may judge the last run's 5xx
              if json.loads(h["HistoryData"])["newState"]["stateValue"] == "ALARM"  # before its OK)
              and h["Timestamp"].timestamp() >= started]
        return min(at) if at else None

    alarm = wait_for(fired, timeout=30, what="the alarm's history")

    def decided() -> float | None:
        events = ecs.describe_services(cluster=site.cluster, services=["web"])["services"][0]["events"]
        at = [e["createdAt"].timestamp() for e in events
              if "rolling back to deployment" in e["message"] and e["createdAt"].timestamp() >= started]
        return min(at) if at else None

    decision = wait_for(decided, timeout=30, what="the rollback event")

    def settled() -> bool:
        deps = ecs.describe_services(cluster=site.cluster, services=["web"])["services"][0]["deployments"]
        return len(deps) == 1 and deps[0]["rolloutState"] == "COMPLETED" and deps[0]["taskDefinition"] != bad

    wait_for(settled, timeout=180, what="the service on the baseline alone")
    dockyard.aws("cloudwatch", "delete-alarms", "--alarm-names", name)
    split = watch.split_at(started)
    error = first_failure(load, split or started)
    return {"canary_split_s": round((split or 0) - started, 2),
            "first_5xx_to_alarm_s": round(alarm - error, 2) if error else None,
            "alarm_to_decided_s": round(decision - alarm, 3),
            "alarm_to_traffic_back_s": round(back - alarm, 3)}


def summary(runs: list[dict], key: str) -> dict:
    values = [r[key] for r in runs if r[key] is not None]
    return {"p50": round(statistics.median(values), 3), "max": round(max(values), 3)} if values else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fail-percent", type=int, default=20)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-deploy-"))
    server = Dockyard(tmp / "data", env=ENV).start()
    try:
        with site_of(server) as site:
            load = Load(site)
            thread = threading.Thread(target=load.run, daemon=True)
            thread.start()
            watch = RouteWatch(site.app)
            try:
                runs = [one_run(server, site, load, watch, n, args.fail_percent) for n in range(args.runs)]
            finally:
                watch.stop()
                load.stop.set()
                thread.join(timeout=30)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    figures = ("first_5xx_to_alarm_s", "alarm_to_decided_s", "alarm_to_traffic_back_s")
    out: dict[str, Any] = {"runs": runs, "alarm_period_s": PERIOD, **{k: summary(runs, k) for k in figures}}
    back = out["alarm_to_traffic_back_s"]
    out["alarm_to_traffic_back_periods_max"] = round(back["max"] / PERIOD, 3) if back else None
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
