"""Saved container logs: written whole, read by their last lines, removed with the task."""

from __future__ import annotations

from pathlib import Path

from runner.agent import savedlogs


def test_a_saved_log_is_read_back_by_its_last_lines_and_removed_with_its_task(tmp_path: Path) -> None:
    savedlogs.save(tmp_path, "t1", "web", b"one\ntwo\nthree\n")
    savedlogs.save(tmp_path, "t1", "side", b"x")
    assert savedlogs.read(tmp_path, "t1", "web", 2) == b"two\nthree\n"
    assert savedlogs.read(tmp_path, "t1", "web", 10) == b"one\ntwo\nthree\n"
    assert savedlogs.read(tmp_path, "t1", "other", 10) is None
    assert savedlogs.read(tmp_path, "t2", "web", 10) is None
    savedlogs.save(tmp_path, "t1", "web", b"again\n")  # a second save replaces the first
    assert savedlogs.read(tmp_path, "t1", "web", 10) == b"again\n"
    savedlogs.remove(tmp_path, "t1")
    assert savedlogs.read(tmp_path, "t1", "side", 10) is None
    assert not savedlogs.task_dir(tmp_path, "t1").exists()
