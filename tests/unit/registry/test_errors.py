import json

import pytest

from registry import errors


def test_each_wire_code_is_registered_once_with_its_status() -> None:
    assert errors.CODES["BLOB_UNKNOWN"].status == 404
    assert errors.CODES["DIGEST_INVALID"].status == 400
    with pytest.raises(ValueError):
        errors.register("BLOB_UNKNOWN", "again", 404)


def test_the_spec_codes_are_all_registered() -> None:
    spec = {
        "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
        "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS",
    }
    assert spec <= set(errors.CODES)


def test_an_error_body_is_the_oci_envelope() -> None:
    err = errors.BLOB_UNKNOWN(detail="sha256:ab")
    assert json.loads(err.body()) == {
        "errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": "sha256:ab"}]
    }
    assert errors.SIZE_INVALID(status=413).status == 413
