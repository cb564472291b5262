"""Traces end to end through ``dockyard up``: two ECS services with Service Connect (the real aws
CLI), a request from ``front``'s network namespace to ``web``'s alias through both sidecars (real
Envoy, its Zipkin tracer configured over xDS, the collector cluster in its bootstrap), and the
collector's Zipkin v2 API (``curl``) and ``dockyard traces --service web`` showing one trace with
spans from both sidecars: ``front``'s CLIENT span and ``web``'s SERVER span sharing its id.

Bad input: garbage, a span of the wrong shape and an oversized body POSTed with ``curl`` get
4xx, and the next good POST and the sidecars' spans still land.

An external collector is a setting: a ``dockyard up`` of its own with ``trace_collector`` set to a
Zipkin v2 server elsewhere (a stand-in on the bridge gateway: Dockyard's collector routes on
aiohttp in this process, as no Zipkin or Jaeger can be had here) has its sidecars' spans land
there, and its own store stays empty.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from aiohttp import web

from mesh.telemetry.traces import TraceStore
from mesh.telemetry.traces_api import Collector
from tests.integration.test_ecs_service_connect import namespace
from tests.integration.test_ecs_services import service_tasks, wait_for
from tests.integration.test_ecs_tasks import own_cluster
from tests.integration.test_mesh_service_connect import (
    app_container,
    create,
    curl_alias,
    running,
    task_definition,
)
from tests.support.server import Dockyard, free_port


@contextmanager
def services(ecs: Any, cluster: str, *names: str) -> Iterator[None]:
    """Delete the services (force: their tasks stop) on the way out, so that none restarts a
    task while the cluster's containers are removed."""
    try:
        yield
    finally:
        for name in names:
            with suppress(Exception):
                ecs.delete_service(cluster=cluster, service=name, force=True)


def curl(*args: str) -> tuple[int, str]:
    """``curl`` (status, body)."""
    out = subprocess.run(["curl", "-s", "--max-time", "20", "-w", "\n%{http_code}", *args],
                         capture_output=True, text=True)
    text, _, code = out.stdout.rpartition("\n")
    return int(code or 0), text


def zipkin(dockyard: Any, path: str) -> Any:
    status, text = curl(f"{dockyard.control_url}/api/v2{path}")
    assert status == 200, (path, status, text)
    return json.loads(text)


def of(spans: list[dict[str, Any]], kind: str, service: str) -> list[dict[str, Any]]:
    return [s for s in spans if s.get("kind") == kind and s["localEndpoint"]["serviceName"] == service]


def crossing(traces: list[list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
    """The first trace with a CLIENT span of front and a SERVER span of web with the same id."""
    for spans in traces:
        client, server = of(spans, "CLIENT", "front"), of(spans, "SERVER", "web")
        if any(c["id"] == s["id"] and s.get("shared") for c in client for s in server):
            return spans
    return None


def post(dockyard: Any, data: str, *extra: str) -> tuple[int, str]:
    return curl("-X", "POST", "-H", "Content-Type: application/json", *extra, "--data-binary", data,
                f"{dockyard.control_url}/api/v2/spans")


def test_a_request_across_two_meshed_services_is_one_trace_with_spans_from_both_sidecars(dockyard, tmp_path):
    ns = namespace(dockyard, f"trc-{uuid.uuid4().hex[:6]}.local")
    alias = f"web.{ns['Name']}"
    ecs = dockyard.client("ecs")
    common = ["--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url]
    with own_cluster(dockyard, "mesh-traces") as cluster, services(ecs, cluster, "web", "front"):
        web = task_definition(dockyard, "trc-web", {"VERSION": "web-v1"})
        create(dockyard, cluster, "web", web, {"enabled": True, "namespace": ns["Name"], "services": [
            {"portName": "web", "discoveryName": "web", "clientAliases": [{"port": 80, "dnsName": alias}]}]})
        front = task_definition(dockyard, "trc-front", {"VERSION": "front"})
        create(dockyard, cluster, "front", front, {"enabled": True, "namespace": ns["Name"]})
        wait_for(lambda: running(ecs, cluster, "web"), timeout=180, what="web's task running")
        [task] = wait_for(lambda: running(ecs, cluster, "front"), timeout=180, what="front's task running")
        app = app_container(task["taskArn"])
        assert wait_for(lambda: curl_alias(app, alias).strip() == "web-v1", timeout=60,
                        what=f"{alias} through the sidecars")
        curl_alias(app, alias, 5)  # Envoy's Zipkin tracer sends at 5 spans, or every 5 s

        # Bad input first: each refused, the collector untouched and still taking spans
        assert post(dockyard, "this is not json")[0] == 400
        status, text = post(dockyard, json.dumps([{"traceId": "not-hex", "id": "1234"}]))
        assert status == 400 and "traceId" in text
        status, text = post(dockyard, json.dumps([{"traceId": "a" * 32, "id": "b" * 16, "kind": "SIDEWAYS"}]))
        assert status == 400 and "kind" in text
        big = tmp_path / "big.json"
        big.write_text(json.dumps([{"traceId": "c" * 32, "id": f"{i:016x}", "tags": {"pad": "x" * 4000}}
                                   for i in range(400)]))  # 1.6 MB > trace_max_body (1 MiB)
        assert post(dockyard, f"@{big}")[0] == 413
        assert curl(f"{dockyard.control_url}/api/v2/trace/{'c' * 32}")[0] == 404  # nothing of it kept
        good = {"traceId": "d" * 32, "id": "e" * 16, "name": "probe", "kind": "SERVER",
                "timestamp": 1, "duration": 1, "localEndpoint": {"serviceName": "trace-probe"}}
        assert post(dockyard, json.dumps([good]))[0] == 202
        assert zipkin(dockyard, f"/trace/{'d' * 32}") == [good]

        def seen() -> list[dict[str, Any]] | None:
            curl_alias(app, alias)
            return crossing(zipkin(dockyard, "/traces?serviceName=web&limit=50"))

        spans = wait_for(seen, timeout=90, interval=1, what="a trace with spans of both sidecars")
        trace_id = spans[0]["traceId"]
        assert len(trace_id) == 32 and all(s["traceId"] == trace_id for s in spans)
        assert {"front", "web"} <= set(zipkin(dockyard, "/services"))
        assert zipkin(dockyard, "/spans?serviceName=web")  # span names of web
        assert crossing([zipkin(dockyard, f"/trace/{trace_id}")])
        for s in spans:
            assert s["tags"]["http.status_code"] == "200" and s["duration"] > 0

        # the real CLI: the trace as a tree (front's CLIENT span over web's SERVER span), and JSON
        proc = dockyard.cli("traces", "--service", "web", "--limit", "50", *common)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        head = next(i for i, line in enumerate(lines) if line.startswith(f"trace {trace_id}"))
        client_line, server_line = lines[head + 1], lines[head + 2]
        assert client_line.startswith("  front CLIENT ") and client_line.endswith("ms")
        assert server_line.startswith("    web SERVER ") and " 200 " in server_line
        proc = dockyard.cli("traces", "--trace", trace_id, "--json", *common)
        assert proc.returncode == 0, proc.stderr
        assert crossing(json.loads(proc.stdout))
        proc = dockyard.cli("traces", "--lookback", "soon", *common)
        assert proc.returncode == 1 and "not a duration" in proc.stderr

        # web's sidecar sends to the collector on the address it reaches xDS at, the control port
        boot = sidecar_bootstrap(service_tasks(ecs, cluster, "web")[0]["taskArn"])
        clusters = {c["name"]: c for c in boot["static_resources"]["clusters"]}

        def address(name: str) -> dict[str, Any]:
            lb = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
            return lb["endpoint"]["address"]["socket_address"]

        assert address("dockyard_traces") == {"address": address("dockyard_xds")["address"],
                                              "port_value": dockyard.ports["control"]}


def sidecar_bootstrap(task_arn: str) -> dict[str, Any]:
    """The bootstrap the task's sidecar runs with (its ``--config-yaml``)."""
    ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label=dockyard.task-arn={task_arn}"],
                         capture_output=True, text=True, check=True).stdout.split()
    for ident in ids:
        args = json.loads(subprocess.run(["docker", "inspect", "-f", "{{json .Args}}", ident],
                                         capture_output=True, text=True, check=True).stdout)
        if "--config-yaml" in args:
            return json.loads(args[args.index("--config-yaml") + 1])
    raise AssertionError(f"no sidecar among {ids}")


def bridge_gateway() -> str:
    return subprocess.run(["docker", "network", "inspect", "bridge", "-f",
                           "{{(index .IPAM.Config 0).Gateway}}"],
                          capture_output=True, text=True, check=True).stdout.strip()


@contextmanager
def zipkin_elsewhere(host: str) -> Iterator[int]:
    """A Zipkin v2 server on ``host``, its port (Dockyard's collector routes, in a thread of this
    process)."""
    collector = Collector(TraceStore(), 1 << 20)
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner: list[web.AppRunner] = []

    async def serve() -> None:
        app = web.Application()
        collector.add_routes(app.router)
        r = web.AppRunner(app, access_log=None)
        await r.setup()
        await web.TCPSite(r, host, port).start()
        runner.append(r)
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(runner[0].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_an_external_collector_is_a_setting(tmp_path: Path, docker_engine: str):
    gateway = bridge_gateway()
    with zipkin_elsewhere(gateway) as port:
        server = Dockyard(tmp_path / "data", env={
            "DOCKYARD_TRACE_COLLECTOR": f"http://{gateway}:{port}", "DOCKYARD_TASK_DNS": "off"}).start()
        try:
            ns = namespace(server, f"ext-{uuid.uuid4().hex[:6]}.local")
            alias = f"web.{ns['Name']}"
            ecs = server.client("ecs")
            with own_cluster(server, "traces-ext") as cluster, services(ecs, cluster, "web", "front"):
                web_td = task_definition(server, "ext-web", {"VERSION": "web-v1"})
                create(server, cluster, "web", web_td, {
                    "enabled": True, "namespace": ns["Name"], "services": [{
                        "portName": "web", "discoveryName": "web",
                        "clientAliases": [{"port": 80, "dnsName": alias}]}]})
                create(server, cluster, "front", task_definition(server, "ext-front", {"VERSION": "front"}),
                       {"enabled": True, "namespace": ns["Name"]})
                wait_for(lambda: running(ecs, cluster, "web"), timeout=180, what="web's task running")
                [task] = wait_for(lambda: running(ecs, cluster, "front"), timeout=180,
                                  what="front's task running")
                app = app_container(task["taskArn"])

                def seen() -> list[dict[str, Any]] | None:
                    curl_alias(app, alias, 3)
                    status, text = curl(f"http://{gateway}:{port}/api/v2/traces?serviceName=web&limit=50")
                    return crossing(json.loads(text)) if status == 200 else None

                spans = wait_for(seen, timeout=90, interval=1, what="the sidecars' spans sent elsewhere")
                assert {s["localEndpoint"]["serviceName"] for s in spans} == {"front", "web"}
                boot = sidecar_bootstrap(task["taskArn"])
                traces = next(c for c in boot["static_resources"]["clusters"]
                              if c["name"] == "dockyard_traces")
                lb = traces["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                assert lb["socket_address"] == {"address": gateway, "port_value": port}
                assert zipkin(server, "/services") == []  # nothing came to Dockyard's own store
        finally:
            server.stop()
