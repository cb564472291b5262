"""``bench/deploy.py --runs 1`` runs end to end (its own ``dockyard up``, real Docker tasks and
Envoy sidecars, a real alarm) and prints the alarm-to-rollback figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_deployment_benchmark_times_an_alarm_rollback():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "deploy.py"), "--runs", "1"],
                         capture_output=True, text=True, timeout=400, check=True, env=env).stdout
    results = json.loads(out.strip().splitlines()[-1])
    [run] = results["runs"]
    assert run["canary_split_s"] > 0 and run["first_5xx_to_alarm_s"] is not None
    assert 0 < run["alarm_to_decided_s"] <= run["alarm_to_traffic_back_s"]
    assert results["alarm_to_traffic_back_s"]["max"] == run["alarm_to_traffic_back_s"]
