"""Capacity provider strategies, pure: how many of a service's (or a RunTask's) tasks each
provider of a ``capacityProviderStrategy`` should hold.

ECS's rule: the provider with a ``base`` gets the first ``base`` tasks; the rest are split by
``weight`` (a provider of weight 0 gets none beyond its base). :func:`split` gives the
shares of ``n`` tasks (largest remainder, ties to the provider listed first, so the split of
``n + 1`` never takes a task away from the split of ``n`` except to honour a weight);
:func:`assign` says which provider each of ``new`` more tasks goes to, given what each holds
now, by filling the provider furthest below its share of the new total first. ECS's own
example (base 1 on A, then weights 1:4 between A and B) and the issue's (base 2, weights
1:3) are in ``tests/unit/runner/test_scheduler_capacity.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Item", "assign", "split"]


@dataclass(frozen=True)
class Item:
    """One ``CapacityProviderStrategyItem``."""

    provider: str
    weight: int = 0
    base: int = 0


def split(strategy: Sequence[Item], n: int) -> dict[str, int]:
    """The number of ``n`` tasks each provider should hold."""
    out = {i.provider: 0 for i in strategy}
    if n <= 0 or not strategy:
        return out
    left = n
    for i in strategy:
        if i.base:
            take = min(i.base, left)
            out[i.provider] += take
            left -= take
    weights = [(i.provider, i.weight) for i in strategy if i.weight > 0]
    if not weights:  # one provider of weight 0: it takes them all
        out[strategy[0].provider] += left
        return out
    total = sum(w for _, w in weights)
    shares = [(p, left * w / total) for p, w in weights]
    floors = {p: int(s) for p, s in shares}
    for p, f in floors.items():
        out[p] += f
    rest = left - sum(floors.values())
    order = sorted(range(len(shares)), key=lambda k: (-(shares[k][1] - floors[shares[k][0]]), k))
    for k in order[:rest]:
        out[shares[k][0]] += 1
    return out


def assign(strategy: Sequence[Item], current: Mapping[str, int], new: int) -> list[str]:
    """The provider of each of ``new`` more tasks, in order, given ``current`` (provider ->
    tasks it holds now; providers not in the strategy are ignored)."""
    held = {i.provider: max(0, int(current.get(i.provider, 0))) for i in strategy}
    out = []
    for _ in range(max(0, new)):
        target = split(strategy, sum(held.values()) + 1)
        names = [i.provider for i in strategy]
        best = max(range(len(names)), key=lambda k: (target[names[k]] - held[names[k]], -k))
        name = names[best]
        held[name] += 1
        out.append(name)
    return out
