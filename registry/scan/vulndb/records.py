"""The vulnerability DB's values (frozen dataclasses, no I/O).

An :class:`Advisory` is one record of one source; each :class:`Affected` names a package in an
ecosystem and a ``spec`` telling which versions are affected, one of:

* ``{"kind": "osv", "ranges": [...], "versions": [...]}``: an OSV ``affected`` entry;
* ``{"kind": "fixed", "fixed": "1.2-3"}``: versions below ``fixed`` (Debian, Alpine);
  ``"fixed": ""`` means no fix yet (every version);
* ``{"kind": "retire", "atOrAbove"|"above": ..., "below"|"atOrBelow": ...}``: Retire.js.

Ecosystems are OSV's names (``PyPI``, ``Go``, ``npm``, ``Maven``), ``Debian:<codename>`` and
``Alpine:v<major>.<minor>``; package names are stored as matching looks them up (PyPI per PEP 503).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Advisory", "Affected", "SourceStatus"]


@dataclass(frozen=True)
class Affected:
    ecosystem: str
    package: str
    spec: dict[str, Any]

    def __hash__(self) -> int:
        return hash((self.ecosystem, self.package, repr(self.spec)))


@dataclass(frozen=True)
class Advisory:
    source: str
    id: str
    affected: tuple[Affected, ...]
    aliases: tuple[str, ...] = ()
    summary: str = ""
    link: str = ""
    published: str = ""
    modified: str = ""
    withdrawn: str = ""
    severity_label: str = ""
    vectors: tuple[str, ...] = ()

    @property
    def newest(self) -> str:
        """The record's newest date (ISO-8601), ignoring placeholder dates before 1990 and dates
        in the future (some records carry typos such as 2027 for 2024)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
        dates = [d for d in (self.modified, self.published) if d and "1990" <= d <= now]
        return max(dates) if dates else ""


@dataclass(frozen=True)
class SourceStatus:
    name: str
    path: str
    imported_at: float
    records: int
    entries: int
    skipped: int
    newest: str
