import json

import pytest

from dockyard.aws.errors import ResourceNotFoundException, UnrecognizedClientException
from runner import execs
from runner.execstream import EXIT, STDERR, STDOUT, Decoder, exit_frame, frame


def test_frames_come_out_whole_however_the_bytes_are_cut():
    data = frame(STDOUT, b"hello\n") + frame(STDERR, b"") + frame(STDERR, b"oops") + exit_frame(3)
    for cut in range(1, len(data)):
        decoder = Decoder()
        got = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert got == [(STDOUT, b"hello\n"), (STDERR, b""), (STDERR, b"oops"), (EXIT, b'{"exitCode": 3}')]
        assert decoder.pending == 0
    cut_short = Decoder()
    assert cut_short.feed(data[:-2])[-1][0] == STDERR and cut_short.pending > 0
    assert json.loads(Decoder().feed(exit_frame(None))[0][1]) == {"exitCode": None}


class Sock:
    def __init__(self):
        self.closed = False

    def shutdown(self, how):
        pass

    def close(self):
        self.closed = True


def _session(sid: str, token: str) -> execs.Session:
    return execs.Session(sid, token, "AKID", None, "exec-1", Sock(), lambda: None, False)  # type: ignore[arg-type]


def test_a_session_is_found_only_with_its_token_and_closes_if_nobody_attaches_in_time():
    sessions = execs.Sessions()
    s = _session("s1", "secret")
    sessions.add(s)
    assert sessions.find("s1", "secret") is s
    with pytest.raises(UnrecognizedClientException):
        sessions.find("s1", "wrong")
    with pytest.raises(ResourceNotFoundException):
        sessions.find("s2", "secret")
    attached = _session("s3", "t")
    attached.attached = True
    sessions.add(attached)
    sessions.expire(s.created + execs.ATTACH_WITHIN - 1)
    assert "s1" in sessions.by_id
    sessions.expire(s.created + execs.ATTACH_WITHIN + 1)
    assert "s1" not in sessions.by_id and s.sock.closed and "s3" in sessions.by_id


def test_the_command_is_one_string_split_as_a_shell_would():
    assert execs._command({"command": "sh -c 'exit 3'"}) == ["sh", "-c", "exit 3"]
    for bad in ({}, {"command": ""}, {"command": "  "}, {"command": 3}, {"command": "echo 'open"}):
        with pytest.raises(execs.InvalidParameterException):
            execs._command(bad)


def test_an_abandoned_command_is_hung_up_only_when_its_cgroup_names_the_container(tmp_path):
    import signal
    import subprocess

    child = subprocess.Popen(["sleep", "30"])
    try:
        cid = "a593f3875b8c" + "0" * 52
        (tmp_path / str(child.pid)).mkdir()
        (tmp_path / str(child.pid) / "cgroup").write_text(f"0::/docker/{'b' * 64}\n")
        assert not execs.hang_up(child.pid, cid, proc=str(tmp_path))
        assert child.poll() is None
        assert not execs.hang_up(0, cid) and not execs.hang_up(child.pid, "short", proc=str(tmp_path))
        (tmp_path / str(child.pid) / "cgroup").write_text(f"0::/docker/{cid}\n")
        assert execs.hang_up(child.pid, cid, proc=str(tmp_path))
        assert child.wait(10) == -signal.SIGHUP
    finally:
        child.kill()
        child.wait()
