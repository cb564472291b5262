"""The one seam between Dockyard and a Docker Engine.

:class:`Transport` lists the few blocking calls the agent makes; :class:`DockerTransport`
implements them over the ``docker`` SDK for one ``base_url`` (``unix:///var/run/docker.sock``,
``tcp://host:2375``). The agent calls them from worker threads. Tests pass a fake with the same
methods (see ``tests/unit/runner/fakedocker.py``), so no unit test touches Docker.

Errors: every Docker failure surfaces as :class:`DockerError` (``NotFound`` for a missing
container or image), so callers never import the SDK's exception types.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

__all__ = ["ContainerSpec", "DockerError", "DockerTransport", "NotFound", "Transport", "ipam_gateway"]


def ipam_gateway(config: list[dict[str, Any]]) -> str:
    """The IPv4 gateway of a network's ``IPAM.Config``: its ``Gateway``, else the first host
    address of its ``Subnet``, which is the gateway Docker gives a subnet without one (Docker
    20.10 restarted shows the default ``bridge`` with a ``Subnet`` only); "" when neither."""
    for c in config:
        if c.get("Gateway") and ":" not in c["Gateway"]:
            return c["Gateway"]
    for c in config:
        if c.get("Subnet") and ":" not in c["Subnet"]:
            return str(next(ipaddress.ip_network(c["Subnet"], strict=False).hosts(), ""))
    return ""


class DockerError(Exception):
    """The Docker Engine refused or failed a call (message is the engine's explanation)."""


class NotFound(DockerError):
    """No such container or image."""


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one container (SDK-neutral; sizes in bytes, cpu in units).

    ``host`` holds Docker host-config keys as the SDK's ``create_host_config`` names them
    (``cpu_shares``, ``nano_cpus``, ``mem_limit``, ``mem_reservation``, ``network_mode``,
    ``port_bindings``, ``binds``, ``ulimits``, ``log_config``, ``extra_hosts``...).
    """

    name: str
    image: str
    labels: dict[str, str]
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None
    ports: list[tuple[int, str]] = field(default_factory=list)
    healthcheck: dict[str, Any] | None = None
    stop_timeout: int | None = None
    hostname: str | None = None
    host: dict[str, Any] = field(default_factory=dict)


class Transport(Protocol):
    """Blocking Docker Engine calls (run them off the event loop)."""

    def info(self) -> dict[str, Any]: ...
    def gateway(self, network: str) -> str: ...
    def image_present(self, ref: str) -> bool: ...
    def pull(self, ref: str, auth: dict[str, str] | None = None) -> None: ...
    def import_image(self, rootfs: bytes | IO[bytes], ref: str, changes: list[str]) -> None: ...
    def create(self, spec: ContainerSpec) -> str: ...
    def start(self, cid: str) -> None: ...
    def stop(self, cid: str, timeout: int) -> None: ...
    def remove(self, cid: str) -> None: ...
    def remove_volume(self, name: str) -> None: ...
    def inspect(self, cid: str) -> dict[str, Any]: ...
    def containers(self, label: str) -> list[dict[str, Any]]: ...
    def events(self, since: float | None, label: str) -> Iterator[dict[str, Any]]: ...
    def logs(self, cid: str, tail: int) -> bytes: ...
    def timed_logs(self, cid: str, tail: int, since: int | None) -> bytes: ...
    def stats(self, cid: str) -> dict[str, Any]: ...
    def exec_start(self, cid: str, cmd: list[str], tty: bool, stdin: bool) -> tuple[str, Any, Any]: ...
    def exec_inspect(self, exec_id: str) -> dict[str, Any]: ...
    def exec_resize(self, exec_id: str, rows: int, cols: int) -> None: ...
    def close(self) -> None: ...


def _split_ref(ref: str) -> tuple[str, str]:
    """``repo[:tag]`` or ``repo@digest`` into (repository, tag-or-digest)."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


class DockerTransport:
    """:class:`Transport` over the ``docker`` SDK's low-level API client."""

    def __init__(self, base_url: str = "", timeout: int = 120) -> None:
        import docker

        self._errors = docker.errors
        self.base_url = base_url or "unix:///var/run/docker.sock"
        self._timeout = timeout
        # Made on first use (version "auto" asks the engine): an engine that is down when the
        # transport is built (the control plane starting while a host's dockerd restarts) is
        # a DockerError of the first call, not a failure to build.
        self._api: Any = None
        # events() blocks for as long as the stream lives: give it its own client so that
        # closing it never races the calls made on the main one.
        self._events_api: Any = None
        self._events_stream: Any = None
        self._closed = False

    def _client(self) -> Any:
        import docker

        if self._api is None:
            self._api = docker.APIClient(base_url=self.base_url, timeout=self._timeout, version="auto")
        return self._api

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` (``fn`` a callable, or the name of an APIClient method) with
        every failure, connecting included, as :class:`DockerError`."""
        try:
            if isinstance(fn, str):
                fn = getattr(self._client(), fn)
            return fn(*args, **kwargs)
        except self._errors.NotFound as e:
            raise NotFound(_explain(e)) from None
        except self._errors.APIError as e:
            raise DockerError(_explain(e)) from None
        except self._errors.DockerException as e:
            raise DockerError(str(e)) from None
        except OSError as e:
            raise DockerError(f"cannot reach the Docker Engine at {self.base_url}: {e}") from None

    def info(self) -> dict[str, Any]:
        """``docker info`` plus ``ApiVersion`` (the engine's own, from ``docker version``)."""
        info = dict(self._call("info"))
        info["ApiVersion"] = self._call("version").get("ApiVersion", "")
        return info

    def gateway(self, network: str) -> str:
        """The IPv4 gateway of a Docker network (``bridge``: the default one), "" if it has none."""
        return ipam_gateway((self._call("inspect_network", network).get("IPAM") or {}).get("Config") or [])

    def image_present(self, ref: str) -> bool:
        try:
            self._call("inspect_image", ref)
            return True
        except NotFound:
            return False

    def pull(self, ref: str, auth: dict[str, str] | None = None) -> None:
        repo, tag = _split_ref(ref)
        # Stream the progress so errors reported mid-pull (manifest unknown...) surface.
        stream = self._call("pull", repo, tag=tag, stream=True, decode=True, auth_config=auth)
        try:
            for msg in stream:
                if "error" in msg:
                    raise DockerError(msg.get("error") or "pull failed")
        except self._errors.APIError as e:
            raise DockerError(_explain(e)) from None

    def import_image(self, rootfs: bytes | IO[bytes], ref: str, changes: list[str]) -> None:
        """``docker import`` of a root file system tar (``POST /images/create?fromSrc=-``),
        given as bytes or a binary file object, which is streamed (the sidecar image's 110 MB
        never sit in memory)."""
        repo, tag = _split_ref(ref)
        self._call("import_image_from_data", rootfs, repository=repo, tag=tag, changes=changes)

    def create(self, spec: ContainerSpec) -> str:
        host_config = self._call("create_host_config", **spec.host)
        ports = [(p, proto) if proto != "tcp" else p for p, proto in spec.ports] or None
        result = self._call(
            "create_container",
            spec.image,
            command=spec.command,
            name=spec.name,
            hostname=spec.hostname,
            environment=spec.environment,
            labels=spec.labels,
            working_dir=spec.working_dir,
            user=spec.user,
            entrypoint=spec.entrypoint,
            ports=ports,
            healthcheck=spec.healthcheck,
            stop_timeout=spec.stop_timeout,
            host_config=host_config,
            detach=True,
        )
        return str(result["Id"])

    def start(self, cid: str) -> None:
        self._call("start", cid)

    def stop(self, cid: str, timeout: int) -> None:
        # The HTTP call lasts up to ``timeout`` seconds of grace before SIGKILL.
        self._call("stop", cid, timeout=timeout)

    def remove(self, cid: str) -> None:
        self._call("remove_container", cid, force=True, v=True)

    def remove_volume(self, name: str) -> None:
        self._call("remove_volume", name)

    def inspect(self, cid: str) -> dict[str, Any]:
        return self._call("inspect_container", cid)

    def containers(self, label: str) -> list[dict[str, Any]]:
        return self._call("containers", all=True, filters={"label": label})

    def events(self, since: float | None, label: str) -> Iterator[dict[str, Any]]:
        """Connect to the engine's event stream now (a DockerError if it is down, so that
        returning means connected) and return the events as they come."""
        import docker

        if self._closed:
            return iter(())
        self._events_api = self._call(docker.APIClient, base_url=self.base_url, timeout=None, version="auto")
        filters = {"type": "container", "label": label}
        stream = self._call(self._events_api.events, since=since, filters=filters, decode=True)
        self._events_stream = stream
        return self._follow(stream)

    def _follow(self, stream: Any) -> Iterator[dict[str, Any]]:
        try:
            yield from stream
        except (self._errors.DockerException, OSError, ValueError) as e:
            raise DockerError(f"event stream from {self.base_url} ended: {e}") from None

    def logs(self, cid: str, tail: int) -> bytes:
        return self._call("logs", cid, stdout=True, stderr=True, tail=tail, timestamps=False)

    def timed_logs(self, cid: str, tail: int, since: int | None) -> bytes:
        """Lines from ``since`` (whole seconds since the epoch; Docker's ``since`` keeps lines
        of that second on), each prefixed with its RFC 3339 timestamp."""
        return self._call("logs", cid, stdout=True, stderr=True, tail=tail, since=since, timestamps=True)

    def stats(self, cid: str) -> dict[str, Any]:
        """One reading of the container's resource use (``docker stats --no-stream``, one-shot:
        no second sample, so no ``precpu_stats``): cumulative CPU time, memory in use."""
        return self._call("stats", cid, stream=False, one_shot=True)

    def follow_logs(self, cid: str, since: float | None) -> Iterator[bytes]:
        """The container's output from ``since`` (seconds since the epoch, fractions kept) as it
        is written, each line prefixed with its RFC 3339 timestamp; ends when the container
        stops (or the engine goes). Blocks while it waits: run it in a thread."""
        try:
            stream = self._call("logs", cid, stdout=True, stderr=True, stream=True, follow=True,
                                timestamps=True, since=since if since else None)
            yield from stream
        except (self._errors.DockerException, OSError, ValueError) as e:
            raise DockerError(f"log stream of {cid[:12]} from {self.base_url} ended: {e}") from None

    def exec_start(self, cid: str, cmd: list[str], tty: bool, stdin: bool) -> tuple[str, Any, Any]:
        """Create and start ``cmd`` in container ``cid`` (Docker's exec API); returns the exec
        id, the connection's socket, hijacked by the engine (what is sent to it is the
        command's stdin, what it reads is its output: raw with a TTY, else Docker's framing of
        stdout and stderr), and a function to call once done with the socket (each exec has a
        connection of its own)."""
        import docker

        api = self._call(docker.APIClient, base_url=self.base_url, timeout=None, version="auto")
        try:
            created = self._call(api.exec_create, cid, cmd, stdin=stdin, tty=tty)
            sock = self._call(api.exec_start, created["Id"], tty=tty, socket=True)
        except DockerError:
            api.close()
            raise
        return str(created["Id"]), getattr(sock, "_sock", sock), api.close

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return self._call("exec_inspect", exec_id)

    def exec_resize(self, exec_id: str, rows: int, cols: int) -> None:
        self._call("exec_resize", exec_id, height=rows, width=cols)

    def close(self) -> None:
        """Release connections; an ``events()`` iterator blocked in another thread ends."""
        self._closed = True
        if self._events_stream is not None:
            try:
                self._events_stream.close()
            except Exception:
                pass
        for api in (self._events_api, self._api):
            if api is not None:
                try:
                    api.close()
                except Exception:
                    pass


def _explain(e: Any) -> str:
    explanation = getattr(e, "explanation", None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or e)
