"""Placement: feasibility checks, then ranking; one task at a time.

:func:`schedule` places one task; :func:`place` places ``count`` tasks in turn, charging each
placement to its host's view so that the next one sees the capacity, ports and group
membership it took (a service's three tasks with distinctInstance land on three hosts).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from runner.scheduler.feasible import checkers, missing_attributes, rejections
from runner.scheduler.model import (
    ATTRIBUTE,
    DEFAULT_TASK_STRATEGY,
    HostView,
    NoHostFits,
    Placed,
    Placement,
    Rejection,
    TaskNeeds,
    TaskView,
)
from runner.scheduler.rank import rank

__all__ = ["charge", "place", "schedule"]


def schedule(
    hosts: Sequence[HostView], needs: TaskNeeds, seed: int | None = None, rng: random.Random | None = None
) -> Placement | NoHostFits:
    """Where one task should go, or why it fits nowhere.

    Hosts failing any check are rejected with every reason they failed; the rest are ranked
    by ``needs.strategy`` (``random`` when empty) and the best one wins. Raises only for a
    malformed memberOf expression (``runner.query.QueryError``), which callers validate when
    they accept it.
    """
    rng = rng or random.Random(seed)
    checks = checkers(needs)
    feasible, rejected = [], []
    for host in hosts:
        reasons = rejections(host, checks)
        if reasons:
            missing = missing_attributes(host, needs.attributes) if ATTRIBUTE in reasons else ()
            rejected.append(Rejection(host.id, reasons, missing))
        else:
            feasible.append(host)
    if not feasible:
        return NoHostFits(tuple(rejected))
    ranked = rank(feasible, hosts, needs, needs.strategy or DEFAULT_TASK_STRATEGY, rng)
    scores, best = ranked[0]
    return Placement(best.id, scores, tuple(rejected))


def charge(host: HostView, needs: TaskNeeds, task_id: str) -> HostView:
    """``host`` after a task with ``needs`` was placed on it."""
    return replace(
        host,
        cpu=host.cpu - needs.cpu,
        memory=host.memory - needs.memory,
        ports=host.ports | frozenset(needs.ports),
        tasks=(*host.tasks, TaskView(task_id, needs.group)),
    )


def place(
    hosts: Sequence[HostView], needs: TaskNeeds, count: int = 1, seed: int | None = None
) -> Placed:
    """Place ``count`` identical tasks one after another (see module docstring)."""
    rng = random.Random(seed)
    current = list(hosts)
    results: list[Placement | NoHostFits] = []
    for i in range(count):
        result = schedule(current, needs, rng=rng)
        results.append(result)
        if isinstance(result, Placement):
            current = [charge(h, needs, f"pending-{i}") if h.id == result.host_id else h for h in current]
    return Placed(tuple(results))
