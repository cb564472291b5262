"""The edge part: Application Load Balancers (``aws elbv2``) and certificates (``aws acm``) on
one host Envoy configured over Dockyard's xDS server.

* :mod:`edge.elbv2` and :mod:`edge.acm` serve the APIs, their state in :mod:`edge.data`;
* after each write, :meth:`Edge.refresh` turns the state into the edge Envoy's resources
  (:func:`edge.translate.translate`, pure) and publishes them for the node
  :data:`NODE` through the mesh's xDS server (``edge.seams.Xds``); the Envoy process is
  started with the first listener and stopped with the platform;
* :attr:`Edge.targets` (:mod:`edge.targets`) is where the runner registers an ECS service's
  tasks (``runner.seams.TargetGroups``, wired by dockyard.platform);
* :meth:`Edge.probe_once` is Dockyard's own health prober: each in-use target group's targets
  are checked at its interval (HTTP GET of its path, its matcher, its timeout), judged by
  :func:`edge.health.judge`; a change of a target's health republishes (only healthy
  targets get traffic; none healthy: all of them, ALB's fail-open). A deregistered target
  drains for the group's ``deregistration_delay.timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from dockyard.aws.errors import ValidationException
from edge import checks
from edge import metrics as alb_metrics
from edge.acm import TARGET, Acm
from edge.data import LB, LISTENER, MIGRATIONS, RULE, TG, Data, Resource
from edge.elbv2 import SERVICE, Elbv2
from edge.errors import ValidationError
from edge.health import HEALTHY, Health, judge, matches
from edge.seams import MetricSink, Xds
from edge.targets import ServiceTargets
from edge.translate import Group, Listener, Rule, listener_name, translate
from edge.xds import messages

if TYPE_CHECKING:
    from dockyard.platform import Platform

__all__ = ["MIGRATIONS", "NODE", "Edge", "install"]

log = logging.getLogger("dockyard.edge")
NODE = "dockyard-edge"
DROP_INVALID = "routing.http.drop_invalid_header_fields.enabled"
Key = tuple[str, str, int]  # (target group ARN, target id, port)


@dataclass
class Edge:
    data: Data
    host: str
    target_host: str  # where an ``instance`` target is reached (this machine)
    run_dir: Path
    xds: Xds | None = None
    health: dict[Key, Health] = field(default_factory=dict)
    last_probe: dict[Key, float] = field(default_factory=dict)
    draining: dict[Key, float] = field(default_factory=dict)  # until when
    registered: set[Key] = field(default_factory=set)
    envoy: asyncio.subprocess.Process | None = None
    serving: bool = False
    certificates: Acm | None = None
    targets: ServiceTargets | None = None  # ECS services' tasks (runner.seams.TargetGroups)
    metrics: MetricSink | None = None  # CloudWatch's store (edge.seams.MetricSink)
    last_stats: dict[str, float] = field(default_factory=dict)
    _starting: asyncio.Task | None = None

    # -- state → Envoy ----------------------------------------------------------------------

    def address(self, tg: Resource, target_id: str) -> str:
        return target_id if tg.body["TargetType"] == "ip" else self.target_host

    def used_groups(self) -> set[str]:
        out: set[str] = set()
        for lst in self.data.all(LISTENER):
            out |= self.groups_of(lst)
        return out

    def groups_of(self, lst: Resource) -> set[str]:
        """The target groups ``lst`` routes to (its rules' and default actions')."""
        out: set[str] = set()
        for actions in [
            lst.body["DefaultActions"],
            *(r.body["Actions"] for r in self.data.all(RULE, lst.arn)),
        ]:
            for act in actions:
                if act.get("TargetGroupArn"):
                    out.add(act["TargetGroupArn"])
                out.update(
                    g["TargetGroupArn"] for g in (act.get("ForwardConfig") or {}).get("TargetGroups", [])
                )
        return out

    def desired(self) -> dict[str, list[dict[str, Any]]]:
        """The translation's inputs read from the store and the health kept here."""
        listeners = []
        for lst in self.data.all(LISTENER):
            cert = None
            if lst.body["Protocol"] == "HTTPS" and self.certificates is not None:
                certs = lst.body.get("Certificates") or []
                cert = self.certificates.pem(certs[0]["CertificateArn"]) if certs else None
            rules = tuple(
                Rule(int(r.body["Priority"]), tuple(r.body["Conditions"]), tuple(r.body["Actions"]))
                for r in self.data.all(RULE, lst.arn)
            )
            lb = self.data.get(lst.body["LoadBalancerArn"], LB)
            attrs = lb.body["_attrs"] if lb is not None else {}
            listeners.append(
                Listener(
                    lst.arn.rsplit("/", 1)[1],
                    self.host,
                    lst.body["Port"],
                    lst.body["Protocol"],
                    tuple(lst.body["DefaultActions"]),
                    rules,
                    cert,
                    idle_timeout=int(attrs.get("idle_timeout.timeout_seconds", 60)),
                    http2=attrs.get("routing.http2.enabled", "true") == "true",
                    drop_invalid_headers=attrs.get(DROP_INVALID) == "true",
                )
            )
        groups = []
        for tg in self.data.all(TG):
            targets = [(t.id, t.port) for t in self.data.targets(tg.arn)]
            healthy = [
                t for t in targets if (h := self.health.get((tg.arn, *t))) is not None and h.state == HEALTHY
            ]
            if not tg.body.get("HealthCheckEnabled", True):
                healthy = targets
            chosen = healthy or targets  # none healthy: every target (ALB fails open)
            attrs = tg.body["_attrs"]
            sticky = (
                float(attrs["stickiness.lb_cookie.duration_seconds"])
                if attrs.get("stickiness.enabled") == "true"
                else None
            )
            groups.append(
                Group(
                    tg.arn,
                    tg.arn.rsplit("/", 1)[1],
                    tg.body["Protocol"],
                    tg.body["ProtocolVersion"],
                    tuple((self.address(tg, i), p) for i, p in chosen),
                    sticky,
                )
            )
        return translate(listeners, groups)

    def refresh(self) -> None:
        """Track registrations (a target gone drains), republish, start Envoy if needed."""
        now = time.monotonic()
        current = {(t.tg, t.id, t.port) for t in self.data.targets()}
        for key in self.registered - current:
            tg = self.data.get(key[0], TG)
            delay = float(tg.body["_attrs"]["deregistration_delay.timeout_seconds"]) if tg else 0.0
            if delay > 0:
                self.draining[key] = now + delay
            self.health.pop(key, None)
        for key in current:
            self.draining.pop(key, None)
        self.registered = current
        self.draining = {k: until for k, until in self.draining.items() if until > now}
        if not self.serving or self.xds is None:
            return
        resources = self.desired()
        try:
            self.xds.publish(NODE, messages(resources))
        except ValueError as e:
            log.error("edge: snapshot refused", extra={"error": str(e)})
            return
        if resources["listeners"] and self.envoy is None and self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._start_envoy())

    def draining_of(self, tg: str) -> list[tuple[str, int]]:
        now = time.monotonic()
        return [(i, p) for (g, i, p), until in self.draining.items() if g == tg and until > now]

    def health_of(self, tg: str, target_id: str, port: int) -> Health | None:
        return self.health.get((tg, target_id, port))

    def certificate_users(self, arn: str) -> list[str]:
        return [
            lst.arn
            for lst in self.data.all(LISTENER)
            if any(c.get("CertificateArn") == arn for c in lst.body.get("Certificates") or [])
        ]

    # -- Envoy ------------------------------------------------------------------------------

    async def _start_envoy(self) -> None:
        assert self.xds is not None
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            admin = s.getsockname()[1]
        path = self.run_dir / "envoy.json"
        boot = self.xds.bootstrap(NODE, admin)
        with contextlib.suppress(KeyError, TypeError):  # the listeners' answers too (ELB codes)
            boot["stats_config"]["stats_matcher"]["inclusion_list"]["patterns"].append(
                {"safe_regex": {"regex": alb_metrics.INCLUDED}}
            )
        path.write_text(json.dumps(boot))
        (self.run_dir / "admin-port").write_text(str(admin))
        with (self.run_dir / "envoy.log").open("ab") as out:
            self.envoy = await asyncio.create_subprocess_exec(
                str(self.xds.envoy_binary()),
                "-c",
                str(path),
                "--use-dynamic-base-id",
                "--log-level",
                "warning",
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        log.info("edge: envoy started", extra={"pid": self.envoy.pid, "admin": admin})

    async def stop_envoy(self) -> None:
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        proc, self.envoy = self.envoy, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    # -- metrics ----------------------------------------------------------------------------

    def topology(self) -> alb_metrics.Topology:
        listeners: dict[str, list[Resource]] = {}
        for lst in self.data.all(LISTENER):
            listeners.setdefault(lst.body["LoadBalancerArn"], []).append(lst)
        balancers = []
        for lb_arn, lsts in listeners.items():
            groups = []
            for arn in sorted(set().union(*(self.groups_of(lst) for lst in lsts))):
                keys = [(arn, t.id, t.port) for t in self.data.targets(arn)]
                healthy = sum(1 for k in keys if (h := self.health.get(k)) is not None and h.state == HEALTHY)
                groups.append(alb_metrics.Group(alb_metrics.dimension(arn), "tg_" + arn.rsplit("/", 1)[1],
                                                healthy, len(keys) - healthy))
            ids = tuple(listener_name(lst.arn.rsplit("/", 1)[1]) for lst in lsts)  # the stat prefixes
            balancers.append((alb_metrics.dimension(lb_arn), ids, tuple(groups)))
        return alb_metrics.Topology(tuple(balancers))

    async def scrape(self, session: aiohttp.ClientSession) -> int:
        """Read the Envoy's counters, record this interval's ALB datapoints; how many."""
        port_file = self.run_dir / "admin-port"
        if self.metrics is None or self.envoy is None or not port_file.exists():
            return 0
        url = f"http://127.0.0.1:{port_file.read_text().strip()}/stats?format=json"
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            now = alb_metrics.parse(await resp.json(content_type=None))
        changes = alb_metrics.deltas(self.last_stats, now)
        first = not self.last_stats
        self.last_stats = now
        if first:  # the first scrape is the baseline
            return 0
        at = time.time()
        items = alb_metrics.datapoints(self.topology(), changes)
        for d in items:
            self.metrics.put(alb_metrics.NAMESPACE, d.name, dict(d.dimensions), d.value, d.unit, at)
        return len(items)

    async def scrape_forever(self, interval: float) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.scrape(session)
                except Exception as e:  # the next interval tries again
                    log.warning("edge: stats scrape failed", extra={"error": str(e)})

    # -- health -----------------------------------------------------------------------------

    async def _check(self, session: aiohttp.ClientSession, tg: Resource, key: Key) -> tuple[str, int]:
        body = tg.body
        port = key[2] if body["HealthCheckPort"] == "traffic-port" else int(body["HealthCheckPort"])
        scheme = "https" if body["HealthCheckProtocol"] == "HTTPS" else "http"
        host = self.address(tg, key[1])
        if body["ProtocolVersion"] == "GRPC":  # a connection is the check (docs/edge.md)
            try:
                _, w = await asyncio.wait_for(
                    asyncio.open_connection(host, port), body["HealthCheckTimeoutSeconds"]
                )
                w.close()
                return "ok", 0
            except TimeoutError:
                return "timeout", 0
            except OSError:
                return "refused", 0
        url = f"{scheme}://{host}:{port}{body['HealthCheckPath']}"
        try:
            timeout = aiohttp.ClientTimeout(total=body["HealthCheckTimeoutSeconds"])
            async with session.get(url, timeout=timeout, ssl=False, allow_redirects=False) as resp:
                await resp.read()
                ok = matches((body.get("Matcher") or {}).get("HttpCode", "200"), resp.status)
                return ("ok" if ok else "mismatch"), resp.status
        except TimeoutError:
            return "timeout", 0
        except aiohttp.ClientError:
            return "refused", 0

    async def probe_once(self, session: aiohttp.ClientSession) -> bool:
        """Check every due target of the in-use groups; True when some health changed."""
        now = time.monotonic()
        used = self.used_groups()
        due: list[tuple[Resource, Key]] = []
        for arn in used:
            tg = self.data.get(arn, TG)
            if tg is None or not tg.body.get("HealthCheckEnabled", True):
                continue
            for t in self.data.targets(arn):
                key = (arn, t.id, t.port)
                if now - self.last_probe.get(key, -1e9) >= tg.body["HealthCheckIntervalSeconds"]:
                    self.last_probe[key] = now
                    due.append((tg, key))
        if not due:
            return False
        outcomes = await asyncio.gather(*(self._check(session, tg, key) for tg, key in due))
        changed = False
        for (tg, key), (outcome, status) in zip(due, outcomes, strict=True):
            old = self.health.get(key, Health())
            new = judge(
                old, outcome, status, tg.body["HealthyThresholdCount"], tg.body["UnhealthyThresholdCount"]
            )
            if key not in self.registered and key[0] in used:
                continue  # deregistered meanwhile
            self.health[key] = new
            changed |= new.state != old.state
        for key in [k for k in self.health if k[0] not in used]:  # unused again: start over when used
            self.health.pop(key)
            self.last_probe.pop(key, None)
        return changed

    async def probe_forever(self, tick: float = 0.5) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    if await self.probe_once(session):
                        self.refresh()
                    elif self.draining and min(self.draining.values()) <= time.monotonic():
                        self.refresh()
                except Exception as e:  # the prober must go on
                    log.error("edge: probe failed", extra={"error": str(e)})
                await asyncio.sleep(tick)


async def _serve(edge: Edge, platform: Platform) -> AsyncIterator[None]:
    edge.serving = True
    edge.refresh()
    prober = asyncio.create_task(edge.probe_forever())
    scraper = asyncio.create_task(edge.scrape_forever(platform.config.mesh_stats_flush_interval or 10.0))
    try:
        yield
    finally:
        for task in (prober, scraper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await edge.stop_envoy()


def install(platform: Platform, *, xds: Xds | None = None) -> Edge:
    """Register ELBv2's and ACM's operations; publish the edge's snapshot and run the prober
    and the Envoy while the platform serves."""
    cfg = platform.config
    try:
        ports = checks.parse_ports(cfg.edge_ports)
    except ValueError as e:
        raise ValueError(f"config edge_ports: {e}") from None
    host = cfg.edge_host or cfg.host
    data = Data(platform.store)
    edge = Edge(data, host, "127.0.0.1" if host in ("0.0.0.0", "") else host, cfg.data_path / "edge", xds=xds)
    acm = Acm(
        data, region=cfg.region, account=cfg.account_id, in_use=edge.certificate_users, changed=edge.refresh
    )
    edge.certificates = acm
    edge.targets = ServiceTargets(data, edge.refresh, edge.health_of, edge.draining_of)
    elb = Elbv2(
        data,
        region=cfg.region,
        account=cfg.account_id,
        host=host,
        ports=ports,
        changed=edge.refresh,
        health=edge.health_of,
        draining=edge.draining_of,
        certificates=acm,
        dns_name=host,
    )
    for name, handler in elb.operations().items():
        platform.ops.add(SERVICE, name, handler)  # the main process: health and Envoy live here
    for name, handler in acm.operations().items():
        platform.ops.add(TARGET, name, handler)
    platform.ops.validate(SERVICE, ValidationError)
    platform.ops.validate(TARGET, ValidationException)

    def serve(p: Platform) -> AsyncIterator[None]:
        return _serve(edge, p)

    platform.contexts.append(serve)
    return edge
