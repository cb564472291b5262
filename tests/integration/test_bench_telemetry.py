"""``bench/telemetry.py --quick`` runs end to end against real Envoys and prints both figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_telemetry_benchmark_prints_both_figures():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "telemetry.py"), "--quick"],
                         capture_output=True, text=True, timeout=120, check=True, env=env).stdout
    results = json.loads(out.strip().splitlines()[-1])
    c = results["collection"]
    assert c["streaming"] == c["envoys"] == 3 and c["flushes"] > 0 and c["series"] > 0
    assert c["requests_answered"] == 36 and c["cpu_us_per_sidecar_per_flush"] > 0
    g = results["get_metric_data"]
    for case in ("mesh_stats_2_revisions_60s", "one_series_3h_at_10s", "math_sum_of_10_services_3h_at_60s"):
        assert g[case]["points"] > 0 and 0 < g[case]["p50_ms"] <= g[case]["p99_ms"], case
