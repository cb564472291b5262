"""When to recompute the mesh after changes (pure; the caller passes the clock).

Discovery churn (instances registering, health flipping) comes in bursts: a push waits for
``quiet`` seconds without churn (about 100 ms), but never more than ``bound`` seconds after
the first change of the burst, so a steady trickle cannot hold a push back forever. An
operator change (an App Mesh write, an ECS service update, a task placed or stopped) is due
at once, and takes any pending churn with it.
"""

from __future__ import annotations

__all__ = ["Debounce"]


class Debounce:
    def __init__(self, quiet: float = 0.1, bound: float = 1.0) -> None:
        self.quiet = quiet
        self.bound = bound
        self._first: float | None = None  # the first change not yet pushed
        self._last = 0.0
        self._now = False

    def churn(self, now: float) -> None:
        """A discovery change happened at ``now``."""
        if self._first is None:
            self._first = now
        self._last = now

    def urgent(self, now: float) -> None:
        """An operator change happened at ``now``: push at once."""
        if self._first is None:
            self._first = now
        self._last = now
        self._now = True

    def deadline(self) -> float | None:
        """When the pending changes are due; None when nothing is pending."""
        if self._first is None:
            return None
        if self._now:
            return self._last
        return min(self._last + self.quiet, self._first + self.bound)

    def due(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline

    def pushed(self) -> None:
        """The pending changes were pushed."""
        self._first, self._now = None, False
