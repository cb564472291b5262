"""Which PostgreSQL driver the state store uses: asyncpg or psycopg 3, measured.

    .venv/bin/python bench/pgdriver.py postgresql://user@127.0.0.1:5432/db [N]

For each driver (asyncpg; psycopg 3 async; psycopg 3 sync, the way the store calls it on the
event loop thread), the mean time of N point reads by primary key and of N write transactions
(BEGIN, one UPDATE of a counter row, one INSERT, COMMIT), one at a time as the store does.
asyncpg is an optional measurement dependency (``pip install asyncpg``); the store needs only
psycopg.
"""

from __future__ import annotations

import asyncio
import sys
import time

import psycopg

SETUP = """
DROP TABLE IF EXISTS bench_kv; DROP TABLE IF EXISTS bench_rev;
CREATE TABLE bench_kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE bench_rev (id INTEGER PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO bench_rev VALUES (1, 0);
INSERT INTO bench_kv SELECT 'k' || i, repeat('x', 200) FROM generate_series(1, 1000) i;
"""
INSERT = "INSERT INTO bench_kv VALUES (%s, 'y') ON CONFLICT (k) DO NOTHING"


def _report(name: str, reads: float, writes: float, n: int) -> None:
    print(f"{name:<16} point read {reads / n * 1e6:7.1f} µs   write tx {writes / n * 1e6:7.1f} µs")


def psycopg_sync(url: str, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        t = time.perf_counter()
        for i in range(n):
            conn.execute("SELECT v FROM bench_kv WHERE k = %s", (f"k{i % 1000 + 1}",)).fetchone()
        reads = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(n):
            with conn.transaction():
                conn.execute("UPDATE bench_rev SET value = value + 1 WHERE id = 1")
                conn.execute(INSERT, (f"s{i}",))
        writes = time.perf_counter() - t
    _report("psycopg sync", reads, writes, n)


async def psycopg_async(url: str, n: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        t = time.perf_counter()
        for i in range(n):
            cur = await conn.execute("SELECT v FROM bench_kv WHERE k = %s", (f"k{i % 1000 + 1}",))
            await cur.fetchone()
        reads = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(n):
            async with conn.transaction():
                await conn.execute("UPDATE bench_rev SET value = value + 1 WHERE id = 1")
                await conn.execute(INSERT, (f"a{i}",))
        writes = time.perf_counter() - t
    _report("psycopg async", reads, writes, n)


async def asyncpg_(url: str, n: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        t = time.perf_counter()
        for i in range(n):
            await conn.fetchrow("SELECT v FROM bench_kv WHERE k = $1", f"k{i % 1000 + 1}")
        reads = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(n):
            async with conn.transaction():
                await conn.execute("UPDATE bench_rev SET value = value + 1 WHERE id = 1")
                await conn.execute(INSERT.replace("%s", "$1"), f"p{i}")
        writes = time.perf_counter() - t
    finally:
        await conn.close()
    _report("asyncpg", reads, writes, n)


def main() -> None:
    url = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SETUP)
    psycopg_sync(url, n)
    asyncio.run(psycopg_async(url, n))
    try:
        asyncio.run(asyncpg_(url, n))
    except ImportError:
        print("asyncpg           not installed")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE bench_kv; DROP TABLE bench_rev")


if __name__ == "__main__":
    main()
