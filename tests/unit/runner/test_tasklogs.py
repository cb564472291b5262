import pytest

from runner.errors import InvalidParameterException
from runner.tasklogs import decode_token, encode_token, split_timestamps, timestamp_ns


def test_docker_timestamps_are_read_to_the_nanosecond():
    assert timestamp_ns("1970-01-01T00:00:01Z") == 1_000_000_000
    assert timestamp_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert timestamp_ns("2026-12-02T01:36:31.123456789Z") == 1796175391_123456789
    for bad in ("", "hello", "2026-12-02T01:36:31.12x4Z", "2026-12-02 01:36:31Z"):
        with pytest.raises(ValueError):
            timestamp_ns(bad)


def test_lines_lose_their_stamp_and_a_line_without_one_takes_the_previous_time():
    data = b"1970-01-01T00:00:01Z first\n1970-01-01T00:00:02.000000001Z second\r\nrest of a long line\n"
    assert split_timestamps(data) == [
        (1_000_000_000, b"first\n"), (2_000_000_001, b"second\r\n"),
        (2_000_000_001, b"rest of a long line\n"),
    ]
    assert split_timestamps(b"") == []


def test_a_token_round_trips_and_anything_else_is_refused_as_a_parameter_error():
    seen = {"web": 2_000_000_001, "sidecar": 5}
    assert decode_token(encode_token(seen)) == seen
    assert decode_token(encode_token({})) == {}
    for bad in ("!!", "bm90IGpzb24", encode_token({"web": "x"}).replace("=", ""), 3, '["a"]'):  # type: ignore[list-item]
        with pytest.raises(InvalidParameterException):
            decode_token(bad)
