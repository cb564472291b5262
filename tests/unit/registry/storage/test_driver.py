"""The storage driver contract, run against every backend (the ``driver`` fixture of conftest.py)."""

from __future__ import annotations

import time

import pytest

from registry.storage.driver import PathNotFound, StorageDriver


def test_content_put_is_read_back(driver: StorageDriver) -> None:
    driver.put_content("a/b/c", b"hello")
    assert driver.get_content("a/b/c") == b"hello"
    info = driver.stat("a/b/c")
    assert info is not None and info.size == 5 and not info.is_dir


def test_missing_paths_raise_or_stat_none(driver: StorageDriver) -> None:
    with pytest.raises(PathNotFound):
        driver.get_content("nope")
    with pytest.raises(PathNotFound):
        driver.reader("nope")
    assert driver.stat("nope") is None
    assert driver.list("nope") == []


def test_a_writer_appends_and_a_reader_starts_at_an_offset(driver: StorageDriver) -> None:
    w = driver.writer("up/data")
    w.write(b"hello ")
    w.write(memoryview(b"world"))
    w.commit()
    w.close()
    assert w.size == 11
    w = driver.writer("up/data")
    assert w.size == 11
    w.write(b"!")
    w.close()
    with driver.reader("up/data", 6) as f:
        assert f.read() == b"world!"


def test_a_writer_at_an_offset_cuts_off_what_follows(driver: StorageDriver) -> None:
    driver.put_content("f", b"0123456789")
    w = driver.writer("f", 4)
    w.write(b"x")
    w.truncate(3)
    w.write(b"yz")
    w.close()
    assert driver.get_content("f") == b"012yz"


def test_cancel_removes_what_was_written(driver: StorageDriver) -> None:
    w = driver.writer("gone")
    w.write(b"data")
    w.cancel()
    assert driver.stat("gone") is None


def test_move_renames_into_new_directories_and_delete_removes_trees(driver: StorageDriver) -> None:
    driver.put_content("tmp/x", b"1")
    driver.move("tmp/x", "final/deep/x")
    assert driver.get_content("final/deep/x") == b"1"
    assert driver.stat("tmp/x") is None
    with pytest.raises(PathNotFound):
        driver.move("tmp/x", "elsewhere")
    assert driver.list("final") == ["deep"]
    driver.delete("final")
    driver.delete("final")
    assert driver.stat("final/deep/x") is None


@pytest.mark.parametrize("path", ["../escape", "/abs", "a/../../b", "nul\0byte"])
def test_paths_that_escape_the_root_are_refused(driver: StorageDriver, path: str) -> None:
    with pytest.raises(ValueError):
        driver.put_content(path, b"x")


def test_list_names_only_the_direct_children_and_delete_spares_lookalike_siblings(
    driver: StorageDriver,
) -> None:
    for path in ("d/a/1", "d/a/2", "d/b", "d/ab/3"):
        driver.put_content(path, path.encode())
    assert driver.list("d") == ["a", "ab", "b"]
    assert driver.list("d/a") == ["1", "2"]
    driver.delete("d/a")
    assert driver.list("d") == ["ab", "b"]
    assert driver.get_content("d/ab/3") == b"d/ab/3"


def test_a_reader_is_a_file_that_reads_to_its_end(driver: StorageDriver) -> None:
    driver.put_content("r", b"abcdef")
    with driver.reader("r", 2) as f:
        assert f.read(2) == b"cd"
        assert f.read() == b"ef"
        assert f.read() == b""


def test_a_long_write_in_small_pieces_reads_back_whole(driver: StorageDriver) -> None:
    """Several MiB in 64 KiB pieces: the filesystem writer starts writeback every MiB on the
    way (``start_writeback``), which must not change what is read back."""
    import hashlib
    import os

    data = os.urandom(3 * (1 << 20) + 12345)
    w = driver.writer("big/data")
    for i in range(0, len(data), 1 << 16):
        w.write(data[i : i + (1 << 16)])
    w.truncate(len(data) - 345)
    w.write(b"tail")
    w.commit()
    w.close()
    expected = data[: len(data) - 345] + b"tail"
    with driver.reader("big/data") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(expected).digest()


def test_stat_gives_a_modification_time_that_a_write_or_a_move_advances(driver: StorageDriver) -> None:
    before = time.time()
    driver.put_content("t/old", b"x")
    first = driver.stat("t/old")
    assert first is not None and before - 1 <= first.modified <= time.time() + 1
    time.sleep(0.02)
    driver.move("t/old", "t/new")
    moved = driver.stat("t/new")
    assert moved is not None and moved.modified > first.modified
    directory = driver.stat("t")
    assert directory is not None and directory.is_dir and directory.modified >= first.modified


def test_walk_lists_every_file_below_a_path_with_its_stat(driver: StorageDriver) -> None:
    for path in ("w/a/1", "w/a/b/2", "w/c", "other/3"):
        driver.put_content(path, path.encode())
    found = {path: info.size for path, info in driver.walk("w")}
    assert found == {"w/a/1": 5, "w/a/b/2": 7, "w/c": 3}
    assert list(driver.walk("nothing")) == []


def test_every_backend_fits_the_protocol(driver: StorageDriver) -> None:
    assert isinstance(driver.name, str)
    methods = ("get_content", "put_content", "reader", "writer", "stat", "list", "walk", "move", "delete")
    for method in methods:
        assert callable(getattr(driver, method)), method


def test_a_filesystem_writer_starts_writeback_as_it_goes(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.storage.driver import filesystem

    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(filesystem, "start_writeback", lambda fd, off, length: calls.append((off, length)))
    w = filesystem.FilesystemDriver(tmp_path).writer("f")
    w.write(b"x" * (filesystem.WRITEBACK_STEP + 10))
    w.write(b"y" * 10)
    w.commit()
    w.close()
    assert calls == [(0, filesystem.WRITEBACK_STEP + 10)]
    filesystem.start_writeback(0, 0, 0)  # nothing to write: a no-op, never an error
