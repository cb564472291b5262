import pytest

from registry.ranges import RangeError, parse_content_range, parse_range


def test_no_range_header_means_the_whole_blob() -> None:
    assert parse_range(None, 10) is None


@pytest.mark.parametrize("header, want", [
    ("bytes=0-0", (0, 0)), ("bytes=2-5", (2, 5)), ("bytes=3-", (3, 9)), ("bytes=-4", (6, 9)),
    ("bytes=5-100", (5, 9)), ("bytes=-100", (0, 9)),
])
def test_satisfiable_ranges_resolve_to_inclusive_offsets(header: str, want: tuple[int, int]) -> None:
    assert parse_range(header, 10) == want


@pytest.mark.parametrize("header", [
    "bytes=10-", "bytes=5-2", "bytes=-0", "bytes=-", "bytes=a-b", "bytes 0-1", "items=0-1", "bytes=0-1,2-3",
    "bytes=" + "9" * 30 + "-",
])
def test_unsatisfiable_or_malformed_ranges_raise(header: str) -> None:
    with pytest.raises(RangeError):
        parse_range(header, 10)


def test_an_empty_blob_satisfies_no_range() -> None:
    with pytest.raises(RangeError):
        parse_range("bytes=0-", 0)


@pytest.mark.parametrize("header, want", [
    ("0-99", (0, 99)), ("100-199", (100, 199)), ("bytes 5-9", (5, 9)), ("bytes=5-9", (5, 9)),
    ("0-9/10", (0, 9)),
])
def test_content_ranges_parse(header: str, want: tuple[int, int]) -> None:
    assert parse_content_range(header) == want


@pytest.mark.parametrize("header", ["", "abc", "5", "9-5", "-5", "0-", "1-2-3"])
def test_malformed_content_ranges_raise(header: str) -> None:
    with pytest.raises(RangeError):
        parse_content_range(header)
