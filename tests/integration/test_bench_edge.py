"""``bench/edge.py --quick`` runs end to end (its own dockyard up, the real aws CLI, the edge
Envoy, wrk) and prints every figure, the last line as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_edge_benchmark_prints_every_figure() -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "edge.py"), "--quick"], capture_output=True,
                         text=True, timeout=300, check=True, env=env).stdout
    r = json.loads(out.strip().splitlines()[-1])["edge_vs_direct"]
    for way in ("direct", "edge"):
        assert r[way]["errors"] == 0 and r[way]["requests"] == r[way]["sent"] > 0, r[way]
        assert 0 < r[way]["p50_ms"] <= r[way]["p99_ms"]
    assert r["rps_direct"] > 0 and r["rps_edge"] > 0 and r["rps_ratio"] > 0
    assert r["edge_envoy_cpu_ms_per_1000"] > 0  # the requests really crossed the edge Envoy
    for figure in ("1. latency", "2. throughput", "3. edge Envoy CPU"):
        assert figure in out
