"""``bench/mesh.py --quick`` runs end to end against real Envoys and prints every figure as JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_mesh_benchmark_prints_every_figure():
    if shutil.which("envoy") is None:
        pytest.fail("envoy is not on PATH (put .venv/bin first)")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "mesh.py"), "--quick"], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    results = json.loads(out.strip().splitlines()[-1])
    for key in ("convergence_sotw", "convergence_delta", "initial_sync_sotw", "initial_sync_delta",
                "initial_sync_sotw_tuned_stats", "sidecar_latency", "mtls_latency"):
        assert key in results, key
    for key in ("convergence_sotw", "convergence_delta"):
        c = results[key]
        assert c["repeats"] == 10 and 0 < c["p50_ms"] <= c["p99_ms"]
        assert c["cpu_us_per_push"] > 0 and c["rss_mib_mean"] > 0
    for key in ("initial_sync_sotw", "initial_sync_delta", "initial_sync_sotw_tuned_stats"):
        assert results[key]["verified"], results[key]
    lat = results["sidecar_latency"]
    assert lat["direct"]["errors"] == 0 and lat["sidecars"]["errors"] == 0
    assert lat["sidecars"]["requests"] == lat["sidecars"]["sent"] > 0
    assert lat["ingress_requests"] >= lat["sidecars"]["requests"]  # the calls really crossed Envoy B
    tls = results["mtls_latency"]
    assert tls["plaintext_refused_by_mtls"]  # the mTLS pair really spoke TLS
    for label in ("plaintext", "mtls"):
        assert tls[label]["errors"] == 0 and tls[label]["requests"] == tls[label]["sent"] > 0
        assert "envoy_cpu_ms_per_1000" in tls[label]  # in clock ticks: a quick run may count none
    for figure in ("1. convergence", "2. initial sync", "3. xDS server CPU", "4. two sidecars", "5. memory",
                   "6. mTLS vs plaintext"):
        assert figure in out
