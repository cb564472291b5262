"""``bench/traces.py --quick`` runs end to end (the collector over real HTTP in a child process)
and prints every figure as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_traces_benchmark_prints_every_figure():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "traces.py"), "--quick"], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    results = json.loads(out.strip().splitlines()[-1])
    assert [r["batch"] for r in results["in_process"]] == [5, 100]
    for r in results["in_process"]:
        assert r["spans"] == 2000 and r["spans_per_s"] > 0
    for r in results["http"]:
        assert r["failed"] == 0 and r["posts"] > 0 and r["spans"] == r["posts"] * r["batch"]
        assert 0 < r["p50_ms"] <= r["p99_ms"]
    tracer = results["tracer"]
    assert tracer["off"]["rps"] > 0 and tracer["on"]["rps"] > 0 and tracer["on_sink"]["rps"] > 0
    assert tracer["zipkin"]["on"]["reports_failed"] == 0  # Envoy's POSTs to the collector went through
    assert "1. in process" in out and "2. over HTTP" in out and "4. the tracer" in out
