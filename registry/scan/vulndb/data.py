"""The vulnerability DB: its own SQLite file (``<data-dir>/vulndb.sqlite``, not the state
store). The only module with the DB's SQL; reads return frozen dataclasses.

Importing is idempotent: a record replaces the stored one with the same (source, id), and
records of one import sharing an id (one CVE fixed in several packages) are merged.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from registry.scan.vulndb.records import Advisory, Affected, SourceStatus

__all__ = ["FILENAME", "ImportCount", "VulnDB", "default_path"]

FILENAME = "vulndb.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY, path TEXT NOT NULL, imported_at REAL NOT NULL,
    entries INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS advisories (
    source TEXT NOT NULL, id TEXT NOT NULL, aliases TEXT NOT NULL, summary TEXT NOT NULL,
    link TEXT NOT NULL, published TEXT NOT NULL, modified TEXT NOT NULL, withdrawn TEXT NOT NULL,
    label TEXT NOT NULL, vectors TEXT NOT NULL, newest TEXT NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE TABLE IF NOT EXISTS affected (
    source TEXT NOT NULL, id TEXT NOT NULL, ecosystem TEXT NOT NULL, package TEXT NOT NULL,
    spec TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS affected_package ON affected (ecosystem, package);
CREATE INDEX IF NOT EXISTS affected_record ON affected (source, id);
"""


def default_path(data_dir: Path) -> Path:
    return Path(data_dir) / FILENAME


class ImportCount:
    """What one import did: records stored and skipped, per source."""

    def __init__(self) -> None:
        self.stored: dict[str, int] = {}
        self.entries: dict[str, int] = {}
        self.skipped = 0

    @property
    def total(self) -> int:
        return sum(self.stored.values())


class VulnDB:
    """One open DB. ``check_same_thread`` is off so a scan may run in a worker thread; the
    caller serialises use."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.conn = sqlite3.connect(self.path, check_same_thread=False)
        self.conn.executescript(_SCHEMA)
        self._cache: dict[tuple[str, str], list[tuple[Advisory, Affected]]] = {}

    def close(self) -> None:
        self.conn.close()

    def import_records(
        self, records: Iterable[Advisory | None], path: str, progress: Callable[[int], None] | None = None
    ) -> ImportCount:
        """Store ``records`` (None = a broken record, counted as skipped) in one transaction."""
        count = ImportCount()
        seen: set[tuple[str, str]] = set()
        now = time.time()
        with self.conn:
            for i, rec in enumerate(records, 1):
                if progress and i % 1000 == 0:
                    progress(i)
                if rec is None:
                    count.skipped += 1
                    continue
                key = (rec.source, rec.id)
                count.entries[rec.source] = count.entries.get(rec.source, 0) + 1
                if key not in seen:
                    seen.add(key)
                    self.conn.execute("DELETE FROM affected WHERE source = ? AND id = ?", key)
                    self.conn.execute(
                        "INSERT OR REPLACE INTO advisories VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            rec.source,
                            rec.id,
                            json.dumps(list(rec.aliases)),
                            rec.summary,
                            rec.link,
                            rec.published,
                            rec.modified,
                            rec.withdrawn,
                            rec.severity_label,
                            json.dumps(list(rec.vectors)),
                            rec.newest,
                        ),
                    )
                    count.stored[rec.source] = count.stored.get(rec.source, 0) + 1
                else:  # same id again in this import: add what it affects, merge aliases
                    row = self.conn.execute(
                        "SELECT aliases FROM advisories WHERE source = ? AND id = ?", key
                    ).fetchone()
                    aliases = list(dict.fromkeys([*json.loads(row[0]), *rec.aliases]))
                    self.conn.execute(
                        "UPDATE advisories SET aliases = ? WHERE source = ? AND id = ?",
                        (json.dumps(aliases), *key),
                    )
                self.conn.executemany(
                    "INSERT INTO affected VALUES (?,?,?,?,?)",
                    [(rec.source, rec.id, a.ecosystem, a.package, json.dumps(a.spec)) for a in rec.affected],
                )
            for source in count.stored:
                self.conn.execute(
                    "INSERT INTO sources (name, path, imported_at, entries, skipped) VALUES (?,?,?,?,?) "
                    "ON CONFLICT (name) DO UPDATE SET path = excluded.path, "
                    "imported_at = excluded.imported_at, "
                    "entries = excluded.entries, skipped = excluded.skipped",
                    (source, path, now, count.entries[source], count.skipped),
                )
        self._cache.clear()
        return count

    def sources(self) -> list[SourceStatus]:
        rows = self.conn.execute(
            "SELECT s.name, s.path, s.imported_at, s.entries, s.skipped, COUNT(a.id), "
            "COALESCE(MAX(a.newest), '') "
            "FROM sources s LEFT JOIN advisories a ON a.source = s.name GROUP BY s.name ORDER BY s.name"
        ).fetchall()
        return [
            SourceStatus(name, path, at, records, entries, skipped, newest)
            for name, path, at, entries, skipped, records, newest in rows
        ]

    def updated_at(self) -> str:
        """The newest record date over all sources (``vulnerabilitySourceUpdatedAt``), or ""."""
        row = self.conn.execute("SELECT COALESCE(MAX(newest), '') FROM advisories").fetchone()
        return str(row[0])

    def candidates(self, ecosystem: str, package: str) -> list[tuple[Advisory, Affected]]:
        """Every (advisory, affected entry) naming ``package`` in ``ecosystem`` (withdrawn ones too:
        matching skips them)."""
        key = (ecosystem, package)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        rows = self.conn.execute(
            "SELECT a.source, a.id, a.aliases, a.summary, a.link, a.published, a.modified, a.withdrawn, "
            "a.label, a.vectors, f.spec FROM affected f "
            "JOIN advisories a ON a.source = f.source AND a.id = f.id "
            "WHERE f.ecosystem = ? AND f.package = ?",
            key,
        ).fetchall()
        out = []
        for source, id_, aliases, summary, link, published, modified, withdrawn, label, vectors, spec in rows:
            aff = Affected(ecosystem, package, json.loads(spec))
            adv = Advisory(
                source,
                id_,
                (aff,),
                tuple(json.loads(aliases)),
                summary,
                link,
                published,
                modified,
                withdrawn,
                label,
                tuple(json.loads(vectors)),
            )
            out.append((adv, aff))
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = out
        return out
