"""``dockyard mesh status [--json]``: per sidecar (node = task ARN), whether it is connected and
ready, the versions it ACKed per type and its last NACK (``DockyardMesh.GetMeshStatus``).

Its own module so that ``mesh/cli.py`` (``dockyard mesh route`` / ``show``) can grow apart: both
hang their actions under one ``dockyard mesh`` parser, whichever module makes it first.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mesh.status import SERVICE

__all__ = ["add_commands", "mesh_actions", "status_rows"]

_TYPES = ("CDS", "EDS", "LDS", "RDS")


def mesh_actions(sub: Any) -> Any:
    """The subparsers of ``dockyard mesh``, made if no other module has made them yet."""
    parser = sub.choices.get("mesh")
    if parser is None:
        parser = sub.add_parser("mesh", help="the service mesh: routes, sidecars (xDS)")
        return parser.add_subparsers(dest="mesh_command", required=True, metavar="ACTION")
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _short(version: str) -> str:
    return version[:8]


def status_rows(sidecars: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's rows: a version column per type, ``*`` marking one behind the snapshot."""
    rows = []
    for s in sidecars:
        row: dict[str, Any] = {
            "node": s["Node"],
            "connected": "yes" if s["Connected"] else "no",
            "ready": "yes" if s["Ready"] else "no",
        }
        for t in _TYPES:
            acked, want = s["Acked"].get(t, ""), s["Snapshot"].get(t, "")
            row[t.lower()] = (_short(acked) or "-") + ("*" if want and acked != want else "")
        nack = s.get("LastNack")
        row["last_nack"] = (
            "" if not nack else f"{nack['TypeUrl'].rsplit('.', 1)[-1]} {nack['ErrorDetail'][:60]}"
        )
        rows.append(row)
    return rows


def add_commands(sub: Any, ctx: Any) -> None:
    actions = mesh_actions(sub)
    p = actions.add_parser("status", help="per sidecar: connected, ready, versions ACKed, last NACK")
    ctx.client_args(p)

    def status(args: argparse.Namespace) -> int:
        sidecars = ctx.client(args).call(SERVICE, "GetMeshStatus", {}).get("Sidecars", [])
        if args.json:
            print(json.dumps(sidecars, indent=2))
            return 0
        ctx.emit(
            args,
            status_rows(sidecars),
            ["node", "connected", "ready", "cds", "eds", "lds", "rds", "last_nack"],
        )
        return 0

    p.set_defaults(func=status)
