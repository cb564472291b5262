"""The sidecars' metrics end to end through ``dockyard up``: two ECS Service Connect services
(``web``, which answers ``/cgi-bin/status?CODE`` with that status, and its client ``front``)
with real Envoy sidecars streaming their stats to the control plane; real HTTP traffic from
front's network namespace; the numbers read back with the real ``aws cloudwatch`` CLI
(get-metric-data, get-metric-statistics, list-metrics) must be the traffic sent, exactly, per
task definition revision (and, once web rolls to revision 2, revision 2's apart from
revision 1's); an alarm on ``HTTPCode_Target_5XX_Count`` goes to ALARM and back to OK
by continuous evaluation; ``/metrics`` has the Prometheus series; ``dockyard mesh stats`` shows
the service. The session server flushes stats every 2 s and evaluates alarms every second
(tests/conftest.py).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.test_ecs_service_connect import namespace
from tests.integration.test_ecs_services import service_tasks, wait_for
from tests.integration.test_ecs_tasks import own_cluster
from tests.integration.test_mesh_service_connect import app_container, create, curl_alias, running
from tests.support.images import echo_status_image
from tests.support.server import Dockyard

NS = "AWS/ECS"


# the ECS service (and discovery) name: its own, since the session server's other services named
# "web" would count in the same series (the metrics are by DiscoveryName)
WEB = f"tweb{uuid.uuid4().hex[:6]}"
FRONT = f"tfront{uuid.uuid4().hex[:6]}"


@dataclass
class Pair:
    cluster: str
    alias: str
    app: str  # front's app container
    web_family: str


def register(dockyard: Dockyard, family: str, version: str) -> str:
    container = {"name": "app", "image": echo_status_image(), "memory": 32, "essential": True,
                 "environment": [{"name": "VERSION", "value": version}],
                 "portMappings": [{"containerPort": 8080, "name": "web", "appProtocol": "http"}]}
    out = dockyard.aws("ecs", "register-task-definition", "--family", family, "--network-mode", "awsvpc",
                       "--container-definitions", json.dumps([container]))
    return out["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture(scope="module")
def pair(dockyard: Dockyard) -> Iterator[Pair]:
    ns = namespace(dockyard, f"tel-{uuid.uuid4().hex[:6]}.local")["Name"]
    alias = f"{WEB}.{ns}"
    ecs = dockyard.client("ecs")
    family = f"tel-web-{uuid.uuid4().hex[:6]}"
    with own_cluster(dockyard, "telemetry") as cluster:
        web = register(dockyard, family, "web-v1")
        create(dockyard, cluster, WEB, web, {"enabled": True, "namespace": ns, "services": [
            {"portName": "web", "discoveryName": WEB, "clientAliases": [{"port": 80, "dnsName": alias}]}]})
        create(dockyard, cluster, FRONT, register(dockyard, f"{family}-front", FRONT),
               {"enabled": True, "namespace": ns})
        for name in (WEB, FRONT):
            wait_for(lambda name=name: running(ecs, cluster, name), timeout=180, what=f"{name} running")
        [task] = service_tasks(ecs, cluster, FRONT)
        app = app_container(task["taskArn"])
        wait_for(lambda: curl_alias(app, alias).strip() == "web-v1", timeout=60, what=f"{alias} answering")
        yield Pair(cluster, alias, app, family)


def send(p: Pair, path: str, count: int, version: str = "web-v1") -> None:
    """``count`` requests of ``path`` to web through front's sidecar; every one answered (by
    ``version``)."""
    bodies = curl_alias(p.app, p.alias, count, path=path)
    assert [b for b in bodies.splitlines() if b.strip()] == [version] * count, bodies


def dims(**kw: str) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in kw.items()]


def statistics(dockyard: Dockyard, metric: str, dimensions: list[dict[str, str]],
               stat: str = "Sum", since: float = 0.0) -> float:
    """``stat`` of ``metric`` over the last 20 minutes in one period, from the real CLI."""
    now = int(time.time())
    start = max(int(since), now - 1200)
    out = dockyard.aws("cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name", metric,
                       "--dimensions", json.dumps(dimensions), "--start-time", str(start),
                       "--end-time", str(now + 60), "--period", str(((now + 60 - start) // 60 + 1) * 60),
                       "--statistics", stat)
    return sum(d[stat] for d in out["Datapoints"])


def settled(read: Any, flush: float = 2.0) -> Any:
    """``read()`` once two reads three flushes apart agree (the sidecars have sent everything)."""
    last = read()
    while True:
        time.sleep(3 * flush)
        now = read()
        if now == last:
            return now
        last = now


def test_request_counts_match_the_traffic_sent_per_revision(dockyard: Dockyard, pair: Pair):
    web_dims = dims(DiscoveryName=WEB)
    rev_dims = dims(DiscoveryName=WEB, TaskDefinitionRevision="1")
    target_dims = dims(DiscoveryName=FRONT, TargetDiscoveryName=WEB)

    def totals() -> tuple[float, ...]:
        return tuple(statistics(dockyard, m, d) for m in ("RequestCount", "HTTPCode_Target_5XX_Count",
                                                          "HTTPCode_Target_4XX_Count")
                     for d in (web_dims, rev_dims, target_dims))

    before = settled(totals)
    send(pair, "/cgi-bin/status?200", 40)
    send(pair, "/cgi-bin/status?500", 10)
    send(pair, "/cgi-bin/status?404", 5)
    want = tuple(b + d for b, d in zip(before, (55,) * 3 + (10,) * 3 + (5,) * 3, strict=True))
    seen: list[tuple[float, ...]] = []

    def arrived() -> bool:
        seen.append(totals())
        return seen[-1] == want

    try:
        wait_for(arrived, timeout=60, what="the sidecars' counts")
    except AssertionError:
        raise AssertionError(f"want {want} (from {before}); got {seen[-1]}") from None
    assert settled(totals) == want  # and nothing more

    # list-metrics names the series; get-metric-data reads them with metric math
    listed = dockyard.aws("cloudwatch", "list-metrics", "--namespace", NS, "--metric-name",
                          "HTTPCode_Target_5XX_Count", "--dimensions",
                          f"Name=DiscoveryName,Value={WEB}")["Metrics"]
    sets = [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in listed]
    assert {"DiscoveryName": WEB, "TaskDefinitionRevision": "1"} in sets
    now = int(time.time())
    queries = [{"Id": m, "ReturnData": False, "MetricStat": {"Metric": {
        "Namespace": NS, "MetricName": name, "Dimensions": rev_dims}, "Period": 60, "Stat": "Sum"}}
        for m, name in (("r", "RequestCount"), ("e", "HTTPCode_Target_5XX_Count"))]
    queries += [{"Id": "total", "Expression": "SUM(r)"}, {"Id": "errors", "Expression": "SUM(e)"}]
    out = dockyard.aws("cloudwatch", "get-metric-data", "--metric-data-queries", json.dumps(queries),
                       "--start-time", str(now - 1200), "--end-time", str(now + 60))
    got = {r["Id"]: sum(r["Values"]) for r in out["MetricDataResults"]}
    assert got == {"total": want[1], "errors": want[4]}
    def latency() -> list[dict[str, Any]] | None:
        """TargetResponseTime once it counts every request (Envoy merges its histograms at a
        flush, so they may come one flush after the counters)."""
        now = int(time.time())
        points = dockyard.aws("cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name",
                              "TargetResponseTime", "--dimensions", json.dumps(web_dims),
                              "--start-time", str(now - 1200), "--end-time", str(now + 60),
                              "--period", "1260", "--statistics", "SampleCount",
                              "--extended-statistics", "p99")["Datapoints"]
        return points if sum(d["SampleCount"] for d in points) >= want[0] else None

    points = wait_for(latency, timeout=30, what="TargetResponseTime of every request")
    assert all(d["ExtendedStatistics"]["p99"] >= 0 for d in points)


def test_put_metric_data_reads_back_and_bad_input_gets_cloudwatch_errors(dockyard: Dockyard):
    ns = f"Dockyard/Test{uuid.uuid4().hex[:6]}"
    now = int(time.time())
    data = [{"MetricName": "Latency", "Dimensions": dims(Api="orders"), "Values": [10, 20, 30],
             "Counts": [1, 1, 2], "Unit": "Milliseconds", "Timestamp": now - 5}]
    dockyard.aws("cloudwatch", "put-metric-data", "--namespace", ns, "--metric-data", json.dumps(data))
    dockyard.aws("cloudwatch", "put-metric-data", "--namespace", ns, "--metric-name", "Latency",
                 "--dimensions", "Api=orders", "--value", "40", "--unit", "Milliseconds")
    out = dockyard.aws("cloudwatch", "get-metric-statistics", "--namespace", ns, "--metric-name", "Latency",
                       "--dimensions", "Name=Api,Value=orders", "--start-time", str(now - 60),
                       "--end-time", str(now + 60), "--period", "120",
                       "--statistics", "Sum", "SampleCount", "Maximum", "Minimum")["Datapoints"]
    assert [(d["Sum"], d["SampleCount"], d["Minimum"], d["Maximum"], d["Unit"]) for d in out] == [
        (130.0, 5.0, 10.0, 40.0, "Milliseconds")]
    assert dockyard.aws("cloudwatch", "list-metrics", "--namespace", ns)["Metrics"] == [
        {"Namespace": ns, "MetricName": "Latency", "Dimensions": dims(Api="orders")}]

    window = ["--start-time", str(now - 60), "--end-time", str(now + 60)]
    stat = {"Metric": {"Namespace": ns, "MetricName": "Latency"}, "Period": 60, "Stat": "Sum"}
    bad = {
        "bad math": (["get-metric-data", "--metric-data-queries",
                      json.dumps([{"Id": "m1", "MetricStat": stat}, {"Id": "e1", "Expression": "m1 +"}]),
                      *window], "InvalidParameterValue"),
        "unknown id in math": (["get-metric-data", "--metric-data-queries",
                                json.dumps([{"Id": "e1", "Expression": "nope * 2"}]), *window],
                               "InvalidParameterValue"),
        "bad id": (["get-metric-data", "--metric-data-queries",
                    json.dumps([{"Id": "M1", "MetricStat": stat}]), *window], "InvalidParameterValue"),
        "bad period": (["get-metric-statistics", "--namespace", ns, "--metric-name", "Latency",
                        "--period", "7", "--statistics", "Sum", *window], "InvalidParameterValue"),
        "bad stat": (["get-metric-data", "--metric-data-queries",
                      json.dumps([{"Id": "m1", "MetricStat": {**stat, "Stat": "Median"}}]), *window],
                     "InvalidParameterValue"),
        "end before start": (["get-metric-statistics", "--namespace", ns, "--metric-name", "Latency",
                              "--period", "60", "--statistics", "Sum", "--start-time", str(now),
                              "--end-time", str(now - 60)], "InvalidParameterValue"),
        "reserved namespace": (["put-metric-data", "--namespace", "AWS/ECS", "--metric-name", "X",
                                "--value", "1"], "InvalidParameterValue"),
        "alarm on a bad period": (["put-metric-alarm", "--alarm-name", "bad", "--namespace", ns,
                                   "--metric-name", "Latency", "--period", "5", "--statistic", "Sum",
                                   "--threshold", "1", "--comparison-operator", "GreaterThanThreshold",
                                   "--evaluation-periods", "1"], "InvalidParameterValue"),
        "alarm to no such state": (["set-alarm-state", "--alarm-name", "no-such-alarm", "--state-value",
                                    "ALARM", "--state-reason", "x"], "ResourceNotFound"),
    }
    for what, (args, code) in bad.items():
        proc = dockyard.aws("cloudwatch", *args, check=False)
        assert proc.returncode != 0 and f"({code})" in proc.stderr, (what, proc.stderr)
    # an unknown metric is no error: no datapoints
    assert dockyard.aws("cloudwatch", "get-metric-statistics", "--namespace", ns, "--metric-name", "Nope",
                        "--period", "60", "--statistics", "Sum", *window)["Datapoints"] == []


def alarm_state(dockyard: Dockyard, name: str) -> str:
    [alarm] = dockyard.aws("cloudwatch", "describe-alarms", "--alarm-names", name)["MetricAlarms"]
    return alarm["StateValue"]


def test_an_alarm_on_5xx_fires_and_clears_by_itself(dockyard: Dockyard, pair: Pair):
    name = f"web-5xx-{uuid.uuid4().hex[:6]}"
    dockyard.aws("cloudwatch", "put-metric-alarm", "--alarm-name", name, "--namespace", NS,
                 "--metric-name", "HTTPCode_Target_5XX_Count",
                 "--dimensions", f"Name=DiscoveryName,Value={WEB}",
                 "--statistic", "Sum", "--period", "10", "--evaluation-periods", "1",
                 "--threshold", "0", "--comparison-operator", "GreaterThanThreshold",
                 "--treat-missing-data", "notBreaching")
    wait_for(lambda: alarm_state(dockyard, name) == "OK", timeout=60, what="the alarm OK")
    send(pair, "/cgi-bin/status?503", 5)
    wait_for(lambda: alarm_state(dockyard, name) == "ALARM", timeout=60, what="the alarm firing")
    wait_for(lambda: alarm_state(dockyard, name) == "OK", timeout=60, what="the alarm clearing")
    history = dockyard.aws("cloudwatch", "describe-alarm-history", "--alarm-name", name,
                           "--history-item-type", "StateUpdate", "--scan-by", "TimestampAscending")
    changes = [(json.loads(h["HistoryData"])["oldState"]["stateValue"],
                json.loads(h["HistoryData"])["newState"]["stateValue"]) for h in history["AlarmHistoryItems"]]
    assert changes == [("INSUFFICIENT_DATA", "OK"), ("OK", "ALARM"), ("ALARM", "OK")]
    dockyard.aws("cloudwatch", "delete-alarms", "--alarm-names", name)
    assert dockyard.aws("cloudwatch", "describe-alarms", "--alarm-names", name)["MetricAlarms"] == []


def test_metrics_endpoint_shows_the_sidecars_series(dockyard: Dockyard, pair: Pair):
    send(pair, "/", 3)

    def scraped() -> str:
        with urllib.request.urlopen(f"{dockyard.control_url}/metrics", timeout=10) as r:
            text = r.read().decode()
        mine = [line for line in text.splitlines() if f'cluster="{pair.cluster}"' in line]
        return text if any(f'service="{WEB}"' in line and 'target="self"' in line for line in mine) else ""

    text = wait_for(scraped, timeout=30, what="web's series on /metrics")
    lines = [line for line in text.splitlines() if line.startswith("dockyard_mesh_requests_total{")
             and f'cluster="{pair.cluster}"' in line]
    assert any(f'service="{FRONT}"' in line and f'target="{WEB}"' in line for line in lines), lines
    assert any(f'service="{WEB}"' in line and 'revision="1"' in line for line in lines), lines
    assert "dockyard_mesh_request_duration_milliseconds_bucket{" in text
    assert 'code="5xx"' in text


def test_mesh_stats_shows_each_revision_of_a_service(dockyard: Dockyard, pair: Pair):
    send(pair, "/cgi-bin/status?200", 20)
    send(pair, "/cgi-bin/status?500", 5)
    common = ["--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url]

    def shown() -> dict[str, Any] | None:
        proc = dockyard.cli("mesh", "stats", pair.alias, "--json", "--window", "600", *common)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        revs = out["Revisions"]
        return out if revs and revs[0]["requests"] >= 25 and revs[0]["errors"] >= 5 else None

    out = wait_for(shown, timeout=60, what="dockyard mesh stats --json")
    assert out["DiscoveryName"] == WEB and [r["revision"] for r in out["Revisions"]] == ["1"]
    [rev] = out["Revisions"]
    assert rev["error_rate"] == round(100 * rev["errors"] / rev["requests"], 2)
    assert 0 <= rev["p50_ms"] <= rev["p99_ms"]
    proc = dockyard.cli("mesh", "stats", WEB, "--count", "2", "--interval", "0.5", "--window", "600",
                        *common)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(f"{WEB}: last 600s") == 2 and "ERROR_RATE" in proc.stdout
    assert any(line.split()[:1] == ["1"] for line in proc.stdout.splitlines())
    bad = dockyard.cli("mesh", "stats", WEB, "--window", "7", *common)
    assert bad.returncode != 0 and "InvalidParameterValue" in bad.stderr, bad.stderr


def test_container_cpu_and_memory_by_cluster_and_service(dockyard: Dockyard, pair: Pair):
    service = dims(ClusterName=pair.cluster, ServiceName=WEB)

    def read(metric: str) -> list[dict[str, Any]]:
        now = int(time.time())
        return dockyard.aws("cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name", metric,
                            "--dimensions", json.dumps(service), "--start-time", str(now - 600),
                            "--end-time", str(now + 60), "--period", "60",
                            "--statistics", "SampleCount", "Average", "Maximum")["Datapoints"]

    cpu = wait_for(lambda: read("CPUUtilization"), timeout=60, what="web's CPUUtilization")
    memory = wait_for(lambda: read("MemoryUtilization"), timeout=60, what="web's MemoryUtilization")
    assert all(d["Unit"] == "Percent" and 0 <= d["Average"] <= d["Maximum"] for d in cpu), cpu
    # the task's containers (busybox httpd and its Envoy sidecar, as in ECS) use part of its 32 MiB
    assert all(0 < d["Average"] < 100 for d in memory), memory
    listed = dockyard.aws("cloudwatch", "list-metrics", "--namespace", NS, "--metric-name",
                          "MemoryUtilization", "--dimensions",
                          f"Name=ClusterName,Value={pair.cluster}")["Metrics"]
    sets = [{d["Name"] for d in m["Dimensions"]} for m in listed]
    assert {"ClusterName"} in sets and {"ClusterName", "ServiceName"} in sets


def test_a_new_revision_is_counted_apart_from_the_old(dockyard: Dockyard, pair: Pair):
    """Last in the module: it rolls web to its second revision."""
    ecs = dockyard.client("ecs")
    v2 = register(dockyard, pair.web_family, "web-v2")
    assert v2.endswith(":2")
    dockyard.aws("ecs", "update-service", "--cluster", pair.cluster, "--service", WEB,
                 "--task-definition", v2)

    def rolled() -> bool:
        tasks = running(ecs, pair.cluster, WEB)
        return bool(tasks) and all(t["taskDefinitionArn"] == v2 for t in tasks)

    wait_for(rolled, timeout=180, what="web rolled to revision 2")
    wait_for(lambda: set(curl_alias(pair.app, pair.alias, 5).split()) == {"web-v2"}, timeout=60,
             what="only web-v2 answering")
    revs = {r: dims(DiscoveryName=WEB, TaskDefinitionRevision=r) for r in ("1", "2")}

    def totals() -> tuple[float, ...]:
        return tuple(statistics(dockyard, m, revs[r]) for r in ("1", "2")
                     for m in ("RequestCount", "HTTPCode_Target_5XX_Count"))

    before = settled(totals)
    assert before[0] > 0  # revision 1 served the earlier tests' traffic
    send(pair, "/cgi-bin/status?200", 30, "web-v2")
    send(pair, "/cgi-bin/status?502", 6, "web-v2")
    want = (before[0], before[1], before[2] + 36, before[3] + 6)
    wait_for(lambda: totals() == want, timeout=60, what=f"revision 2's counts {want}")
    assert settled(totals) == want
    common = ["--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url]
    proc = dockyard.cli("mesh", "stats", WEB, "--json", "--window", "1200", *common)
    assert proc.returncode == 0, proc.stderr
    shown = {r["revision"]: r for r in json.loads(proc.stdout)["Revisions"]}
    assert set(shown) == {"1", "2"} and shown["2"]["requests"] >= 36 and shown["2"]["errors"] >= 6
