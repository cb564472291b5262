"""Per-request cost of ``Operations.answer`` on DiscoverInstances, in process, with a stub
handler answering cached bytes: without and with the model's validation (``--n`` calls each,
best of ``--rounds``). What it measures is the protocol layer alone (SigV4, JSON, validation),
not discovery's index nor the HTTP server.

    .venv/bin/python bench/aws_answer.py [--n 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from dockyard.aws import sigv4
from dockyard.aws.errors import ValidationException
from dockyard.aws.protocol import CLOUDMAP, Call, Operations

KEY, SECRET = "DKYDBENCH", "s3cret"
BODY = json.dumps({
    "NamespaceName": "bench.local", "ServiceName": "web", "MaxResults": 100, "HealthStatus": "HEALTHY",
    "QueryParameters": {"az": "a"},
}).encode()
ANSWER = json.dumps({"Instances": [], "InstancesRevision": 1}).encode()


async def stub(call: Call, params: dict[str, Any]) -> bytes:
    return ANSWER


def operations(validated: bool) -> Operations:
    ops = Operations({KEY: SECRET}.get)
    ops.add(CLOUDMAP, "DiscoverInstances", stub, readonly=True)  # type: ignore[arg-type]
    if validated:
        ops.validate(CLOUDMAP, ValidationException)  # Cloud Map would answer InvalidInput
    return ops


async def per_call(ops: Operations, headers: dict[str, str], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        status, _body = await ops.answer("POST", "/", "", headers, BODY, "r")
    assert status == 200, _body
    return (time.perf_counter() - started) / n


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    headers = sigv4.sign(
        "POST", "/",
        {"host": "127.0.0.1:8080", "content-type": "application/x-amz-json-1.1",
         "x-amz-target": f"{CLOUDMAP}.DiscoverInstances"},
        BODY, KEY, SECRET, "us-east-1", "servicediscovery",
    )
    headers = {k.lower(): v for k, v in headers.items()}
    plain, checked = operations(False), operations(True)
    check = checked._validators[(CLOUDMAP, "DiscoverInstances")]
    params = json.loads(BODY)
    best: dict[str, float] = {"plain": 1.0, "validated": 1.0, "validator": 1.0}
    for _ in range(args.rounds):
        best["plain"] = min(best["plain"], await per_call(plain, headers, args.n))
        best["validated"] = min(best["validated"], await per_call(checked, headers, args.n))
        started = time.perf_counter()
        for _ in range(args.n):
            check(params)
        best["validator"] = min(best["validator"], (time.perf_counter() - started) / args.n)
    for name, seconds in best.items():
        print(f"{name:10s} {seconds * 1e6:7.2f} us/call")
    print(f"validation adds {(best['validated'] - best['plain']) * 1e6:.2f} us "
          f"({(best['validated'] / best['plain'] - 1) * 100:.1f}% of answer)")


if __name__ == "__main__":
    asyncio.run(main())
