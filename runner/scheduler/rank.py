"""Ranking: order the feasible hosts by the placement strategies, first strategy first.

Each strategy gives a host a key where lower is better; strategies chain lexicographically
(ECS applies them in the order given: the second only breaks ties of the first), and the
host id breaks the remaining ties so that a placement is reproducible.

* ``binpack`` (cpu|memory): the host with the least of that resource remaining.
* ``spread`` (instanceId|host|attribute:NAME): the value with the fewest tasks of the group,
  counted over every host in the cluster (not only the feasible ones) so that a full host
  still counts for its zone; hosts without the attribute come last.
* ``random``: a key drawn from ``random.Random(seed)``: seed it for a reproducible order.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from runner.scheduler.model import HostView, Strategy, TaskNeeds, groups_on

__all__ = ["rank"]

_MISSING = float("inf")


def _spread_value(host: HostView, fld: str) -> str | None:
    if fld in ("instanceId", "host"):
        return host.id
    value = host.attributes.get(fld.removeprefix("attribute:"))
    return None if value is None else str(value)


def _spread_keys(all_hosts: Sequence[HostView], needs: TaskNeeds, fld: str) -> dict[str, float]:
    counts: Counter[str] = Counter()
    for h in all_hosts:
        value = _spread_value(h, fld)
        if value is not None:
            counts[value] += sum(1 for g in groups_on(h) if g == needs.group)
    keys = {}
    for h in all_hosts:
        value = _spread_value(h, fld)
        keys[h.id] = _MISSING if value is None else float(counts[value])
    return keys


def rank(
    feasible: Sequence[HostView],
    all_hosts: Sequence[HostView],
    needs: TaskNeeds,
    strategy: Sequence[Strategy],
    rng: random.Random,
) -> list[tuple[tuple[float, ...], HostView]]:
    """``feasible`` hosts with their keys, best first."""
    columns: list[dict[str, float]] = []
    for s in strategy:
        if s.type == "binpack":
            attr = "cpu" if s.field == "cpu" else "memory"
            columns.append({h.id: float(getattr(h, attr)) for h in feasible})
        elif s.type == "spread":
            columns.append(_spread_keys(all_hosts, needs, s.field))
        elif s.type == "random":
            columns.append({h.id: rng.random() for h in sorted(feasible, key=lambda h: h.id)})
        else:
            raise ValueError(f"unknown placement strategy {s.type!r}")
    scored = [(tuple(col[h.id] for col in columns), h) for h in feasible]
    scored.sort(key=lambda kh: (kh[0], kh[1].id))
    return scored
