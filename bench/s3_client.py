"""S3 client benchmark: botocore called from worker threads (what the S3 driver does) beside
aiobotocore (botocore's models over aiohttp, on the event loop), on the same SeaweedFS.

Usage: ``.venv/bin/python bench/s3_client.py [--client botocore|aiobotocore] [--endpoint URL]
[--concurrency 32] [--count 256] [--size 1048576]``

Without ``--endpoint`` it starts its own SeaweedFS (``tests/support/seaweed.py``) and stops it
at the end. aiobotocore pins its own botocore, so it is measured from a venv of its own
(``python -m venv /tmp/aio && /tmp/aio/bin/pip install aiobotocore``, then run this file with
that python and ``--endpoint`` of a running SeaweedFS, the test key). Each run: ``count``
PutObject then ``count`` GetObject (read whole) of ``size`` random bytes, ``concurrency`` at a
time; it prints objects/s and MB/s of each phase, and the process's CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ACCESS_KEY = "dockyardtestkey"
SECRET_KEY = "dockyardtestsecret0123456789"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_botocore(
    endpoint: str, bucket: str, concurrency: int, count: int, data: bytes
) -> dict[str, float]:
    from registry.storage.driver.s3 import make_client

    client = make_client(endpoint, "us-east-1", ACCESS_KEY, SECRET_KEY, pool=concurrency)
    limit = asyncio.Semaphore(concurrency)
    prefix = uuid.uuid4().hex

    def put(i: int) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{i}", Body=data)

    def get(i: int) -> None:
        with client.get_object(Bucket=bucket, Key=f"{prefix}/{i}")["Body"] as body:
            assert len(body.read()) == len(data)

    async def one(fn, i: int) -> None:  # type: ignore[no-untyped-def]
        async with limit:
            await asyncio.to_thread(fn, i)

    out = {}
    for name, fn in (("put", put), ("get", get)):
        cpu, t = _cpu(), time.perf_counter()
        await asyncio.gather(*(one(fn, i) for i in range(count)))
        out[name] = time.perf_counter() - t
        out[f"{name}_cpu"] = _cpu() - cpu
    return out


async def run_aiobotocore(
    endpoint: str, bucket: str, concurrency: int, count: int, data: bytes
) -> dict[str, float]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(
        s3={"addressing_style": "path"}, max_pool_connections=concurrency,
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
    )
    limit = asyncio.Semaphore(concurrency)
    prefix = uuid.uuid4().hex
    async with get_session().create_client(
        "s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, config=config,
    ) as client:

        async def put(i: int) -> None:
            async with limit:
                await client.put_object(Bucket=bucket, Key=f"{prefix}/{i}", Body=data)

        async def get(i: int) -> None:
            async with limit:
                answer = await client.get_object(Bucket=bucket, Key=f"{prefix}/{i}")
                async with answer["Body"] as body:
                    assert len(await body.read()) == len(data)

        out = {}
        for name, fn in (("put", put), ("get", get)):
            cpu, t = _cpu(), time.perf_counter()
            await asyncio.gather(*(fn(i) for i in range(count)))
            out[name] = time.perf_counter() - t
            out[f"{name}_cpu"] = _cpu() - cpu
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=["botocore", "aiobotocore"], default="botocore")
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--bucket", default="bench-s3-client")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--size", type=int, default=1 << 20)
    args = parser.parse_args()
    server = None
    endpoint = args.endpoint
    if not endpoint:
        from tests.support.seaweed import SeaweedS3

        server = SeaweedS3.start(Path(tempfile.mkdtemp(prefix="bench-s3-")))
        endpoint = server.endpoint
    try:
        if server is not None:
            server.bucket(args.bucket)
        data = os.urandom(args.size)
        run = run_botocore if args.client == "botocore" else run_aiobotocore
        result = asyncio.run(run(endpoint, args.bucket, args.concurrency, args.count, data))
        mb = args.count * args.size / 1e6
        for phase in ("put", "get"):
            secs = result[phase]
            shape = f"{args.count} x {args.size} B, {args.concurrency} at a time"
            print(f"{args.client:<12} {phase}: {args.count / secs:8.1f} objects/s {mb / secs:8.1f} MB/s "
                  f"cpu {result[phase + '_cpu']:.2f} s ({shape})")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
