"""``bench/logs.py`` runs end to end on a small store and prints every figure as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_logs_benchmark_prints_every_figure_with_the_hits_it_should_find():
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "logs.py"), "--events", "4000", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    results = json.loads(out.strip().splitlines()[-1])
    assert results["collector_lines_per_s"] > 0 and results["sqlite_append_per_s"] > 0
    assert results["filter_term_ms"][2] == 40 and results["filter_json_ms"][2] == 40  # 1% of 4000
    assert results["filter_none_match_ms"][2] == 0 and results["filter_no_pattern_ms"][2] == 4000
    assert results["files_scan_term_ms"][2] == results["sqlite_scan_term_ms"][2] == 40
    assert results["get_tail_ms"][2] == results["files_tail_ms"][2] == 100
    assert results["sqlite_bytes_full"] > results["stored_bytes"] > 0
