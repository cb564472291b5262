import pytest

from registry.pagination import MAX_N, PageError, next_link, page, parse_n

TAGS = ["a", "b", "c", "d", "e"]


def test_a_page_starts_strictly_after_last() -> None:
    assert page(TAGS, None, "b") == (["c", "d", "e"], False)
    assert page(TAGS, 2, "b") == (["c", "d"], True)
    assert page(TAGS, 2, "c") == (["d", "e"], False)
    assert page(TAGS, 2, None) == (["a", "b"], True)
    assert page(TAGS, 0, None) == ([], True)
    assert page(TAGS, 3, "bb") == (["c", "d", "e"], False)


def test_page_sizes_parse_and_are_capped() -> None:
    assert parse_n(None) is None
    assert parse_n("") is None
    assert parse_n("10") == 10
    assert parse_n("999999999") == MAX_N


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "1e3", "9999999999"])
def test_malformed_page_sizes_raise(value: str) -> None:
    with pytest.raises(PageError):
        parse_n(value)


def test_the_next_link_carries_n_and_last() -> None:
    assert next_link("/v2/a/tags/list", 2, "v1") == '</v2/a/tags/list?n=2&last=v1>; rel="next"'
