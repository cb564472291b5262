"""Failed-login rate limits for the token endpoint (pure: the clock is given).

Each client address has a bucket of :data:`ADDRESS_BURST` failures that refills at one failure
per :data:`ADDRESS_REFILL` seconds, and each user name one of :data:`USER_BURST` refilling at one
per :data:`USER_REFILL` seconds. :meth:`FailureLimiter.attempt` refuses a login before
any password hashing while either bucket is empty, saying for how long (whole seconds, for
``Retry-After``); else it takes one from both *before* the check, so that 32 concurrent bad
logins at one user are charged as they arrive and only :data:`USER_BURST` of them are hashed, and
:meth:`FailureLimiter.succeeded` gives them back.

So that an attacker hammering one user name cannot lock that user out of the addresses it
has logged in from, a successful login marks its (user, address) pair as known for
:data:`KNOWN_FOR` seconds, and a known pair is held only to its address's bucket, not to the
user's. The tables are bounded (:data:`MAX_ENTRIES` each): full buckets are forgotten first.
State is per process (with ``registry_workers`` > 1 each worker counts on its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "ADDRESS_BURST", "ADDRESS_REFILL", "KNOWN_FOR", "MAX_ENTRIES", "USER_BURST", "USER_REFILL",
    "FailureLimiter", "Ticket",
]

# A client address may fail 20 logins at once, then one a second; a user name 10, then one
# every 3 s (a password guessed at that pace takes years for any random password).
ADDRESS_BURST, ADDRESS_REFILL = 20, 1.0
USER_BURST, USER_REFILL = 10, 3.0
KNOWN_FOR = 24 * 3600.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Ticket:
    """What :meth:`FailureLimiter.attempt` decided: ``retry_after`` seconds to wait (0: go
    on, charged), and whether the user's bucket was charged too."""

    retry_after: int
    charged_user: bool = False


@dataclass
class _Bucket:
    tokens: float
    at: float


class _Buckets:
    def __init__(self, burst: int, refill: float, max_entries: int) -> None:
        self.burst, self.refill, self.max_entries = burst, refill, max_entries
        self._buckets: dict[str, _Bucket] = {}

    def _level(self, key: str, now: float) -> float:
        b = self._buckets.get(key)
        if b is None:
            return float(self.burst)
        return min(float(self.burst), b.tokens + (now - b.at) / self.refill)

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may fail once more (0: now)."""
        level = self._level(key, now)
        return 0.0 if level >= 1.0 else (1.0 - level) * self.refill

    def take(self, key: str, now: float, amount: float = 1.0) -> None:
        """Take ``amount`` (a negative one gives back)."""
        level = self._level(key, now)
        self._buckets.pop(key, None)  # re-inserted last: the dict's order is the age order
        self._buckets[key] = _Bucket(min(float(self.burst), max(0.0, level - amount)), now)
        if len(self._buckets) > self.max_entries:
            self._prune(now)

    def _prune(self, now: float) -> None:
        self._buckets = {k: b for k, b in self._buckets.items() if self._level(k, now) < self.burst}
        while len(self._buckets) > self.max_entries:
            del self._buckets[next(iter(self._buckets))]


class FailureLimiter:
    """Per-address and per-user failure buckets with known (user, address) pairs (module
    docstring)."""

    def __init__(
        self,
        address: tuple[int, float] = (ADDRESS_BURST, ADDRESS_REFILL),
        user: tuple[int, float] = (USER_BURST, USER_REFILL),
        known_for: float = KNOWN_FOR,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._addresses = _Buckets(*address, max_entries)
        self._users = _Buckets(*user, max_entries)
        self._known: dict[tuple[str, str], float] = {}
        self.known_for, self.max_entries = known_for, max_entries

    def attempt(self, user: str, address: str, now: float) -> Ticket:
        """Refuse (``retry_after`` > 0: whole seconds, at least 1) or charge one failure in
        advance (module docstring)."""
        known = self._known.get((user, address), 0.0) > now
        wait = self._addresses.wait(address, now)
        if not known:
            wait = max(wait, self._users.wait(user, now))
        if wait > 0:
            return Ticket(max(1, math.ceil(wait)))
        self._addresses.take(address, now)
        if not known:
            self._users.take(user, now)
        return Ticket(0, charged_user=not known)

    def succeeded(self, user: str, address: str, ticket: Ticket, now: float) -> None:
        """Give back what ``ticket`` charged and remember (user, address) as known."""
        self._addresses.take(address, now, -1.0)
        if ticket.charged_user:
            self._users.take(user, now, -1.0)
        self._known.pop((user, address), None)
        self._known[(user, address)] = now + self.known_for
        if len(self._known) > self.max_entries:
            self._known = {k: t for k, t in self._known.items() if t > now}
            while len(self._known) > self.max_entries:
                del self._known[next(iter(self._known))]
