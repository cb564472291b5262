"""``dockyard vulndb import PATH...`` and ``dockyard vulndb status [--json]`` (added by
``registry.cli``). They open ``<data-dir>/vulndb.sqlite`` directly, so they work whether or not
the server runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_commands"]


def add_commands(sub: Any, ctx: Any) -> None:
    def db_path(args: argparse.Namespace) -> Path:
        from registry.scan.vulndb import default_path

        data = ctx.config(args).data_path
        data.mkdir(parents=True, exist_ok=True)
        return default_path(data)

    def import_(args: argparse.Namespace) -> int:
        from registry.scan.vulndb import VulnDB, read_path

        paths = [Path(p) for p in args.paths]
        for p in paths:
            if not p.exists():
                raise ctx.UserError(f"{p}: no such file or directory")
        db = VulnDB(db_path(args))
        try:
            for p in paths:
                start = time.monotonic()

                def progress(n: int, p: Path = p) -> None:
                    print(f"{p.name}: {n} records read", file=sys.stderr, flush=True)

                try:
                    count = db.import_records(read_path(p), str(p.resolve()), progress)
                except ValueError as e:
                    raise ctx.UserError(str(e)) from None
                stored = ", ".join(f"{s} {n}" for s, n in sorted(count.stored.items())) or "nothing"
                print(
                    f"{p.name}: stored {stored}; skipped {count.skipped} broken records "
                    f"({time.monotonic() - start:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            db.close()
        ctx.done(args, f"imported {len(paths)} path(s) into the vulnerability DB")
        return 0

    def status(args: argparse.Namespace) -> int:
        from registry.scan.vulndb import VulnDB

        db = VulnDB(db_path(args))
        try:
            rows = [
                {
                    "source": s.name,
                    "records": s.records,
                    "entries": s.entries,
                    "skipped": s.skipped,
                    "newest": s.newest,
                    "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.imported_at)),
                    "path": s.path,
                }
                for s in db.sources()
            ]
        finally:
            db.close()
        ctx.emit(args, rows, ["source", "records", "skipped", "newest", "imported", "path"])
        return 0

    group = sub.add_parser("vulndb", help="the scanner's vulnerability database").add_subparsers(
        dest="vulndb_command", required=True, metavar="ACTION"
    )
    p = group.add_parser(
        "import",
        help="import advisories: OSV zip/dir/JSON, Debian DSA/DLA lists, "
        "Retire.js JSON, Alpine secdb JSON (re-importing replaces the same records)",
    )
    ctx.data_dir_args(p)
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=import_)
    p = group.add_parser("status", help="sources, record counts and newest record dates")
    ctx.data_dir_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=status)
