"""What a task definition asks of its host beyond an ordinary container (pure).

Dockyard's trust model (``docs/security.md``): a task gets what a Fargate task gets. These
fields give a container power over the Docker host and are refused unless the operator
allows them on the cluster (:mod:`runner.hostaccess`):

* ``containerDefinitions[].privileged`` ``true``: every device and capability, root on the host;
* ``networkMode`` ``host``: the host's network stack (its loopback services, its ports);
* ``pidMode`` / ``ipcMode`` ``host``: the host's processes / shared memory;
* ``volumes[].host.sourcePath`` outside the operator's allow-list of host paths, and always
  a path that is or holds a Docker socket (``/var/run/docker.sock``, ``/run``...), which is
  root on the host by another name.

Paths are compared after normalisation (``/srv/../`` is ``/``). Docker follows symlinks in a
bind mount's source, so an allowed directory a task may write into can be used to plant one:
allow only directories tasks cannot write to, or mount them ``readOnly``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DOCKER_SOCKETS", "HostAccess", "host_access", "path_allowed"]

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


@dataclass(frozen=True)
class HostAccess:
    """One field that reaches into the host: where it is (as the ClientException names it)
    and what it would give."""

    field: str
    gives: str


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def path_allowed(path: str, allowed: Sequence[str], sockets: Sequence[str] = DOCKER_SOCKETS) -> bool:
    """Whether a host ``sourcePath`` may be mounted: inside an ``allowed`` directory, and
    neither a Docker socket nor a directory holding one."""
    norm = posixpath.normpath("/" + path.lstrip("/"))
    norm = "/" if norm == "//" else norm
    if any(_inside(s, norm) for s in sockets):
        return False
    return any(_inside(norm, posixpath.normpath(a)) for a in allowed if a.startswith("/"))


def host_access(
    defn: Mapping[str, Any], allowed_paths: Sequence[str] = (), sockets: Sequence[str] = DOCKER_SOCKETS
) -> list[HostAccess]:
    """The fields of ``defn`` (ECS JSON, as DescribeTaskDefinition gives it) that need host
    access, in the order they appear; empty for a task Fargate would run."""
    out: list[HostAccess] = []
    if defn.get("networkMode") == "host":
        out.append(HostAccess("networkMode", "the host's network"))
    for key, gives in (("pidMode", "the host's processes"), ("ipcMode", "the host's IPC namespace")):
        if defn.get(key) == "host":
            out.append(HostAccess(key, gives))
    for c in defn.get("containerDefinitions") or []:
        if isinstance(c, Mapping) and c.get("privileged") is True:
            out.append(HostAccess(f"containerDefinitions[{c.get('name')}].privileged", "root on the host"))
    for v in defn.get("volumes") or []:
        if not isinstance(v, Mapping):
            continue
        path = (v.get("host") or {}).get("sourcePath")
        if isinstance(path, str) and path and not path_allowed(path, allowed_paths, sockets):
            gives = (
                "the Docker socket" if not path_allowed(path, ["/"], sockets)
                else "a host path outside the allowed ones"
            )
            out.append(HostAccess(f"volumes[{v.get('name')}].host.sourcePath", f"{gives} ({path})"))
    return out
