import pytest

from registry.routes import BASE, BLOB, CATALOG, MANIFEST, REFERRERS, TAGS, UPLOAD, UPLOADS, Route, route


@pytest.mark.parametrize("path, want", [
    ("/v2/", Route(BASE)),
    ("/v2/_catalog", Route(CATALOG)),
    ("/v2/shop/web/tags/list", Route(TAGS, "shop/web")),
    ("/v2/shop/web/manifests/v1", Route(MANIFEST, "shop/web", "v1")),
    ("/v2/a/blobs/sha256:ab", Route(BLOB, "a", "sha256:ab")),
    ("/v2/a/b/c/blobs/uploads/", Route(UPLOADS, "a/b/c")),
    ("/v2/a/blobs/uploads", Route(UPLOADS, "a")),
    ("/v2/a/blobs/uploads/abc", Route(UPLOAD, "a", "abc")),
    ("/v2/a/referrers/sha256:ab", Route(REFERRERS, "a", "sha256:ab")),
    ("/v2/blobs/blobs/x", Route(BLOB, "blobs", "x")),
    ("/v2/manifests/manifests/v1", Route(MANIFEST, "manifests", "v1")),
])
def test_paths_name_their_resource_repository_and_reference(path: str, want: Route) -> None:
    assert route(path) == want


@pytest.mark.parametrize("path", ["/v1/", "/v2/a", "/v2/a/whatever", "/v2/a/manifests/", "/v2/tags/list"])
def test_other_paths_name_nothing(path: str) -> None:
    assert route(path) is None


def test_names_are_returned_unvalidated_for_the_caller_to_check() -> None:
    assert route("/v2/Bad//Name/tags/list") == Route(TAGS, "Bad//Name")
