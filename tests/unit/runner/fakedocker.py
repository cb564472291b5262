"""An in-memory Docker Engine behind the agent's Transport seam (like httpx's MockTransport).

Containers live in a dict; tests drive them (``exit``, ``set_health``, ``kill_behind_back``;
``one_shot[name] = code``: that container exits with ``code`` as soon as it starts) and read what
the agent asked for (``created``, ``started``, ``stopped``, ``pulls``, ``imports``). A started
container's ``port_bindings`` are published (a host port of 0 or None gets one from 32768 up).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from runner.agent.transport import ContainerSpec, DockerError, NotFound

_NEVER = "0001-01-01T00:00:00Z"


class FakeDocker:
    def __init__(self, images: set[str] | None = None, registry: set[str] | None = None) -> None:
        self.images = set(images or ())
        self.registry = set(registry or ())  # references a pull succeeds for
        self.boxes: dict[str, dict[str, Any]] = {}
        self.created: list[ContainerSpec] = []
        self.started: list[str] = []  # container names, in start order
        self.stopped: list[tuple[str, int]] = []
        self.removed: list[str] = []
        self.volumes: set[str] = set()  # named volumes, created on first mount as Docker does
        self.pulls: list[tuple[str, Any]] = []
        self.ignore_term: set[str] = set()
        self.one_shot: dict[str, int] = {}
        self.imports: list[tuple[bytes, str, list[str]]] = []
        self._host_ports = itertools.count(32768)
        self.closed = False
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[dict[str, Any] | None]] = []

    # -- test controls -------------------------------------------------------------------------
    def by_name(self, name: str) -> dict[str, Any]:
        return next(c for c in self.boxes.values() if c["Name"] == "/" + name)

    def exit(self, name: str, code: int) -> None:
        c = self.by_name(name)
        c["State"].update(Status="exited", Running=False, ExitCode=code)
        self._emit(c, "die")

    def set_health(self, name: str, status: str) -> None:
        c = self.by_name(name)
        c["State"]["Health"] = {"Status": status}
        self._emit(c, f"health_status: {status}")

    def add_container(self, spec: ContainerSpec, running: bool = True) -> str:
        cid = self.create(spec)
        if running:
            self.start(cid)
        return cid

    # -- Transport -------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {
            "NCPU": 2,
            "MemTotal": 4 * 1024**3,
            "OSType": "linux",
            "Architecture": "x86_64",
            "ServerVersion": "20.10.24",
            "Name": "fakehost",
            "ID": "FAKE",
        }

    def gateway(self, network: str) -> str:
        return "172.17.0.1" if network == "bridge" else ""

    def image_present(self, ref: str) -> bool:
        return ref in self.images

    def pull(self, ref: str, auth: dict[str, str] | None = None) -> None:
        self.pulls.append((ref, auth))
        if ref not in self.registry:
            raise DockerError(f"manifest for {ref} not found: manifest unknown")
        self.images.add(ref)

    def import_image(self, rootfs: Any, ref: str, changes: list[str]) -> None:
        data = rootfs if isinstance(rootfs, bytes) else rootfs.read()
        self.imports.append((data, ref, list(changes)))
        self.images.add(ref)

    def create(self, spec: ContainerSpec) -> str:
        with self._lock:
            if any(c["Name"] == "/" + spec.name for c in self.boxes.values()):
                raise DockerError(f"Conflict. The container name /{spec.name} is already in use")
            if spec.image not in self.images:
                raise NotFound(f"No such image: {spec.image}")
            cid = f"c{next(self._ids):063d}"
            self.boxes[cid] = {
                "Id": cid,
                "Name": "/" + spec.name,
                "Spec": spec,
                "Config": {"Labels": dict(spec.labels)},
                "State": {"Status": "created", "Running": False, "StartedAt": _NEVER, "ExitCode": 0},
                "NetworkSettings": {"IPAddress": f"172.30.0.{len(self.boxes) + 2}", "Ports": {}},
            }
            self.created.append(spec)
            self.volumes |= {b.split(":")[0] for b in spec.host.get("binds") or [] if not b.startswith("/")}
        return cid

    def _get(self, cid: str) -> dict[str, Any]:
        c = self.boxes.get(cid)
        if c is None:
            c = next((x for x in self.boxes.values() if x["Name"] == "/" + cid), None)
        if c is None:
            raise NotFound(f"No such container: {cid}")
        return c

    def start(self, cid: str) -> None:
        c = self._get(cid)
        c["State"].update(Status="running", Running=True, StartedAt="2026-01-01T00:00:00Z")
        if c["Spec"].healthcheck:
            c["State"]["Health"] = {"Status": "starting"}
        for key, host_port in (c["Spec"].host.get("port_bindings") or {}).items():
            port = host_port or next(self._host_ports)
            c["NetworkSettings"]["Ports"][key] = [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
        self.started.append(c["Name"][1:])
        self._emit(c, "start")
        if c["Name"][1:] in self.one_shot:
            c["State"].update(Status="exited", Running=False, ExitCode=self.one_shot[c["Name"][1:]])
            self._emit(c, "die")

    def stop(self, cid: str, timeout: int) -> None:
        c = self._get(cid)
        self.stopped.append((c["Name"][1:], timeout))
        if c["State"]["Running"]:
            code = 137 if c["Name"][1:] in self.ignore_term else 143
            c["State"].update(Status="exited", Running=False, ExitCode=code)
            self._emit(c, "die")

    def remove(self, cid: str) -> None:
        c = self._get(cid)
        del self.boxes[c["Id"]]
        self.removed.append(c["Name"][1:])

    def remove_volume(self, name: str) -> None:
        if name not in self.volumes:
            raise NotFound(f"get {name}: no such volume")
        binds = [b for c in self.boxes.values() for b in c["Spec"].host.get("binds") or []]
        if any(b.split(":")[0] == name for b in binds):
            raise DockerError(f"remove {name}: volume is in use")
        self.volumes.discard(name)

    def inspect(self, cid: str) -> dict[str, Any]:
        c = self._get(cid)
        return {k: v for k, v in c.items() if k != "Spec"}

    def stats(self, cid: str) -> dict[str, Any]:
        self._get(cid)
        return {"cpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {"usage": 0, "stats": {}}}

    def containers(self, label: str) -> list[dict[str, Any]]:
        return [
            {
                "Id": c["Id"],
                "Names": [c["Name"]],
                "Labels": c["Config"]["Labels"],
                "State": c["State"]["Status"],
            }
            for c in list(self.boxes.values())
            if label in c["Config"]["Labels"]
        ]

    def connection(self) -> _Connection:
        """A transport of its own over this engine (one per Host, closed independently)."""
        return _Connection(self)

    def events(self, since: float | None, label: str) -> Iterator[dict[str, Any]]:
        q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        if self.closed:
            q.put(None)
        self._subscribers.append(q)
        return iter(q.get, None)

    def subscribe(self) -> queue.Queue[dict[str, Any] | None]:
        q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._subscribers.append(q)
        return q

    def logs(self, cid: str, tail: int) -> bytes:
        return f"log of {self._get(cid)['Name'][1:]}\n".encode()

    def timed_logs(self, cid: str, tail: int, since: int | None) -> bytes:
        return b"2026-01-01T00:00:00.000000001Z " + self.logs(cid, tail)

    def close(self) -> None:
        self.closed = True
        for q in self._subscribers:
            q.put(None)
        self._subscribers.clear()

    def _emit(self, c: dict[str, Any], status: str) -> None:
        event = {
            "status": status,
            "id": c["Id"],
            "time": int(time.time()),
            "Actor": {"ID": c["Id"], "Attributes": dict(c["Config"]["Labels"])},
        }
        for q in list(self._subscribers):
            q.put(event)


class _Connection:
    """One client's view of a :class:`FakeDocker`: shared containers, its own event streams."""

    def __init__(self, engine: FakeDocker) -> None:
        self._engine = engine
        self._queues: list[queue.Queue[dict[str, Any] | None]] = []
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def events(self, since: float | None, label: str) -> Iterator[dict[str, Any]]:
        q = self._engine.subscribe()
        self._queues.append(q)
        if self._closed:
            q.put(None)
        return iter(q.get, None)

    def close(self) -> None:
        self._closed = True
        for q in self._queues:
            q.put(None)
            if q in self._engine._subscribers:
                self._engine._subscribers.remove(q)
