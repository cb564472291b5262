import os

import pytest

from dockyard import lock


def test_a_second_holder_is_refused_with_the_first_ones_pid_until_it_releases(tmp_path):
    held = lock.acquire(str(tmp_path))
    assert (tmp_path / lock.LOCK_FILE).read_text().strip() == str(os.getpid())
    with pytest.raises(lock.DataDirInUse) as e:
        lock.acquire(str(tmp_path))  # flock is per open file: a second open conflicts even here
    assert e.value.pid == os.getpid() and f"pid {os.getpid()}" in str(e.value)
    assert (tmp_path / lock.LOCK_FILE).read_text().strip() == str(os.getpid())  # not truncated
    held.release()
    lock.acquire(str(tmp_path)).release()


def test_the_lock_file_descriptor_is_not_inherited(tmp_path):
    held = lock.acquire(str(tmp_path))
    try:
        assert not os.get_inheritable(held.fd)
    finally:
        held.release()
