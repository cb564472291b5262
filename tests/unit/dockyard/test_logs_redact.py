"""No credential reaches a log line: dockyard.logs redacts every formatted line."""

from __future__ import annotations

import json
import logging

import pytest

from dockyard.logs import JsonFormatter, redact

PASSWORD = "hunter2-correct-horse"
BASIC = "YWRtaW46aHVudGVyMi1jb3JyZWN0LWhvcnNl"


@pytest.mark.parametrize("text", [
    f"Authorization: Basic {BASIC}\r\nHost: x",
    f"b'GET / HTTP/1.1\\nauthorization: Bearer {BASIC}.x.y\\n'",
    str({"Authorization": f"AWS4-HMAC-SHA256 Credential={BASIC}/x, Signature={BASIC}"}),
    f"grant_type=password&username=bob&password={PASSWORD}&scope=x",
    json.dumps({"password": PASSWORD}),
    f"X-Amz-Security-Token: {BASIC}",
    f"/x?X-Amz-Security-Token={BASIC}&X-Amz-Signature={BASIC}",
    f"aws_secret_access_key = {PASSWORD}",
    f'{{"SecretAccessKey": "{PASSWORD}"}}',
    f"proxy-authorization: basic {BASIC}",
])
def test_credentials_are_redacted_wherever_they_appear(text: str):
    out = redact(text)
    assert PASSWORD not in out and BASIC not in out, out
    assert "[redacted]" in out
    assert redact(json.dumps({"exc": text})).count("[redacted]") >= 1
    assert BASIC not in redact(json.dumps({"exc": text}))


def test_ordinary_lines_are_left_alone():
    line = json.dumps({"msg": "request", "path": "/v2/shop/web/manifests/v1", "status": 200,
                       "grant_type": "password", "secrets": 3})
    assert redact(line) == line


def test_the_json_formatter_redacts_message_extras_and_traceback():
    try:
        raise ValueError(f"bad line b'Authorization: Basic {BASIC}'")
    except ValueError as e:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, f"password={PASSWORD}", None,
                                   (type(e), e, e.__traceback__))
    record.headers = {"Authorization": f"Basic {BASIC}"}
    line = JsonFormatter().format(record)
    assert PASSWORD not in line and BASIC not in line
    json.loads(line)
