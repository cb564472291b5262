"""The storage driver contract, run against every backend (the ``driver`` fixture of conftest.py)."""

from __future__ import annotations

import pytest

from registry.storage.driver import PathNotFound, StorageDriver


def test_content_put_is_read_back(driver: StorageDriver) -> None:
    driver.put_content("a/b/c", b"hello")
    assert driver.get_content("a/b/c") == b"hello"
    assert driver.stat("a/b/c") == 5


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


def test_writeback_is_available_on_linux() -> None:
    import sys

    from registry.storage import driver as drv

    if sys.platform.startswith("linux"):
        assert drv._sync_file_range is not None
    drv.start_writeback(0, 0, 0)  # nothing to write: a no-op, never an error
