import hashlib

import pytest

from registry.reference import Digest, digest_of, is_tag, is_valid_name, parse_digest


@pytest.mark.parametrize(
    "name", ["shop", "shop/web", "a/b/c/d", "my-app", "my__app", "a.b_c-d/e--f", "x" * 255]
)
def test_names_of_the_spec_grammar_are_valid(name: str) -> None:
    assert is_valid_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "Shop", "shop/", "/shop", "shop//web", "shop/../web", "..", "-a", "a-", "a___b", "a/.b", "x" * 256],
)
def test_names_outside_the_grammar_are_invalid(name: str) -> None:
    assert not is_valid_name(name)


@pytest.mark.parametrize("tag", ["latest", "v1.0.0", "_x", "A-b_c.d", "a" * 128])
def test_tags_of_the_spec_grammar_are_valid(tag: str) -> None:
    assert is_tag(tag)


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a" * 129, "a:b", "a/b"])
def test_tags_outside_the_grammar_are_invalid(tag: str) -> None:
    assert not is_tag(tag)


def test_sha256_and_sha512_digests_parse() -> None:
    d256 = "sha256:" + hashlib.sha256(b"x").hexdigest()
    d512 = "sha512:" + hashlib.sha512(b"x").hexdigest()
    assert parse_digest(d256) == Digest("sha256", d256[7:])
    assert str(parse_digest(d512)) == d512
    assert digest_of(b"x", "sha512") == d512


@pytest.mark.parametrize("value", [
    "", "sha256", "sha256:", "sha256:abc", "md5:" + "a" * 32, "sha256:" + "A" * 64, "sha256:" + "g" * 64,
    "sha512:" + "a" * 64, "sha256:" + "a" * 65, ":" + "a" * 64,
])
def test_malformed_digests_do_not_parse(value: str) -> None:
    assert parse_digest(value) is None
