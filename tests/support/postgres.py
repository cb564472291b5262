"""A throw-away PostgreSQL cluster for the tests, from Debian's ``postgresql`` binaries.

``Postgres(root).start()`` runs ``initdb`` in a temp dir and ``postgres`` on a free port of
127.0.0.1 (password auth over TCP, the unix socket in the temp dir; never a system cluster),
as the ``postgres`` user when the tests run as root (PostgreSQL refuses root).
:meth:`Postgres.store_url` gives every store its own schema, so that a test's store starts
empty for the cost of one ``CREATE SCHEMA``. The session fixture is ``postgres`` in
tests/conftest.py; ``DOCKYARD_TEST_STATE=postgresql`` runs every store of the suite on it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg

from tests.support.server import free_port

SESSION: Postgres | None = None  # the session's cluster (tests/conftest.py), for servers to use
SERVERS = True  # under DOCKYARD_TEST_STATE=postgresql: False while a test marked sqlite runs
USER = "dockyard"
PASSWORD = "dockyard-test-pw"


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found: install Debian's postgresql (scripts/dev setup)")
    return found[-1]


class Postgres:
    """One cluster under ``root`` (see module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = 0
        self._schemas: dict[str, str] = {}

    @classmethod
    @contextmanager
    def temporary(cls) -> Iterator[Postgres]:
        """A started cluster in a new dir under /tmp (which the ``postgres`` user can reach,
        unlike pytest's 0700 temp dirs), stopped and removed at exit."""
        root = Path(tempfile.mkdtemp(prefix="dockyard-pg-"))
        cluster = cls(root)
        try:
            yield cluster.start()
        finally:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        cmd = list(argv)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")

    def start(self) -> Postgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres")
        done = self._run(_bin("initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
                         "--auth-local=trust", "--auth-host=scram-sha-256", "--locale=C", "-E", "UTF8")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")
        self.port = free_port()
        self._ctl_start()
        return self

    def _ctl_start(self) -> None:
        # fsync off: a test cluster lost with the machine is no loss, and commits stay cheap
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
                " -c full_page_writes=off -c max_connections=400")
        done = self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                         "-w", "-t", "60", "-o", opts, "start")
        if done.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()} {log[-2000:]}")

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        """Stop (fast: open connections are cut) and start again on the same port."""
        self.stop()
        self._ctl_start()

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{quote(password)}@127.0.0.1:{self.port}/{database}"

    def store_url(self, name: str) -> str:
        """The URL of a store of its own (a new, empty schema) for ``name`` (the same URL for
        the same name, so a test that reopens a store finds its data)."""
        if name not in self._schemas:
            schema = "s_" + hashlib.sha256(name.encode()).hexdigest()[:16]
            with psycopg.connect(self.url(), autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                conn.execute(f"CREATE SCHEMA {schema}")
            self._schemas[name] = self.url() + "?options=" + quote(f"-csearch_path={schema}")
        return self._schemas[name]
