"""Task roles: put the credentials endpoint at ``169.254.170.2``, as the ECS agent does.

AWS SDKs accept a plain-HTTP ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` only for a loopback host,
``169.254.170.2`` or ``169.254.170.23`` (botocore's ``ContainerMetadataFetcher``); the port is
not checked. So when the endpoint listens on ``<bridge ip>:<port>`` and Dockyard runs as root
with ``iptables``, :func:`install` adds a chain of its own, ``DOCKYARD-CREDS-<port>``, holding
one rule ``-d 169.254.170.2/32 -p tcp --dport <port> -j DNAT --to-destination <ip>:<port>``,
jumped to from ``nat PREROUTING`` (the containers) and ``nat OUTPUT`` (the host itself) by
rules matching the same address and port; tasks then get
``http://169.254.170.2:<port>/v1/tasks/<id>/credentials``. The port in the chain's name and
rules keeps several Dockyards on one host (and an ECS agent's port 80) apart. Nothing else is
touched: the jumps are checked with ``-C`` before ``-A``, only the own chain is flushed, and
:func:`remove` deletes the jumps and the chain at stop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from collections.abc import Sequence

__all__ = [
    "LINK_LOCAL", "bridge_addresses", "chain", "dnat", "install", "jumps", "match", "public_base", "remove",
    "usable",
]

log = logging.getLogger(__name__)
LINK_LOCAL = "169.254.170.2"
HOOKS = ("PREROUTING", "OUTPUT")


def chain(port: int) -> str:
    """The chain of the endpoint at ``port``."""
    return f"DOCKYARD-CREDS-{port}"


def match(port: int) -> list[str]:
    return ["-d", f"{LINK_LOCAL}/32", "-p", "tcp", "--dport", str(port)]


def jumps(port: int) -> list[list[str]]:
    """The rules (``nat`` table, without ``-A``/``-C``/``-D``) jumping to :func:`chain`."""
    return [[hook, *match(port), "-j", chain(port)] for hook in HOOKS]


def dnat(host: str, port: int) -> list[str]:
    """The one rule of :func:`chain`, without ``-A``."""
    return [chain(port), *match(port), "-j", "DNAT", "--to-destination", f"{host}:{port}"]


def public_base(port: int) -> str:
    """The base of the URIs tasks get once the rule is in place."""
    return f"http://{LINK_LOCAL}:{port}"


def bridge_addresses(ip_json: str) -> set[str]:
    """The IPv4 addresses in ``ip -j -4 addr show type bridge`` output."""
    try:
        links = json.loads(ip_json or "[]")
    except ValueError:
        return set()
    return {a["local"] for link in links for a in link.get("addr_info", []) if a.get("local")}


def usable(host: str, is_root: bool, has_iptables: bool, bridges: set[str]) -> str:
    """Why the rule cannot be installed for an endpoint on ``host``, "" if it can."""
    if not is_root:
        return "not running as root"
    if not has_iptables:
        return "no iptables"
    if host not in bridges:
        return f"{host} is not the address of a bridge"
    return ""


async def _run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, (out or err).decode(errors="replace").strip()


async def _nat(*args: str) -> tuple[int, str]:
    return await _run("iptables", "-w", "-t", "nat", *args)


async def install(host: str, port: int) -> str:
    """Route ``169.254.170.2:<port>`` to ``host:port``; returns why not ("" when done)."""
    has = shutil.which("iptables") is not None
    bridges: set[str] = set()
    if has and shutil.which("ip"):
        bridges = bridge_addresses((await _run("ip", "-j", "-4", "addr", "show", "type", "bridge"))[1])
    why = usable(host, os.geteuid() == 0, has, bridges)
    if why:
        return why
    name = chain(port)
    if (await _nat("-S", name))[0] != 0:
        code, out = await _nat("-N", name)
        if code != 0:
            return f"iptables -N {name}: {out}"
    await _nat("-F", name)  # our own chain only: a leftover of an earlier run on this port
    steps: list[Sequence[str]] = [["-A", *dnat(host, port)]]
    for rule in jumps(port):
        if (await _nat("-C", *rule))[0] != 0:
            steps.append(["-A", *rule])
    for step in steps:
        code, out = await _nat(*step)
        if code != 0:
            await remove(port)
            return f"iptables {' '.join(step)}: {out}"
    return ""


async def remove(port: int) -> None:
    """Delete the jumps to the chain of ``port`` and the chain (what :func:`install` added)."""
    for rule in jumps(port):
        for _ in range(10):  # every copy, should there be several
            if (await _nat("-C", *rule))[0] != 0:
                break
            await _nat("-D", *rule)
    if (await _nat("-S", chain(port)))[0] == 0:
        await _nat("-F", chain(port))
        code, out = await _nat("-X", chain(port))
        if code != 0:
            log.warning("cannot delete iptables chain %s: %s", chain(port), out)
