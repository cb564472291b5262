"""Target input as EventBridge defines it: Input, InputPath and InputTransformer (the examples of
AWS's "Transforming target input" page), and the checks PutTargets makes of them."""

from __future__ import annotations

import json

import pytest

from runner.eventbridge.transform import (
    MISSING,
    TransformError,
    check_target_input,
    path_value,
    render,
    target_input,
)

EVENT = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING", "count": 3, "tags": ["a", "b"]},
}
RULE = "arn:aws:events:us-east-1:123456789012:rule/r"


def _out(template: str, paths: dict[str, str]) -> str | None:
    target = {"Id": "t", "InputTransformer": {"InputPathsMap": paths, "InputTemplate": template}}
    return target_input(target, EVENT, RULE, "r", "2015-11-11T21:29:55Z")


def test_paths_read_dots_indexes_and_quoted_names() -> None:
    assert path_value(EVENT, "$.detail.state") == "RUNNING"
    assert path_value(EVENT, "$.resources[0]").endswith("i-abcd1111")
    assert path_value(EVENT, "$.detail['instance-id']") == "i-0123456789"
    assert path_value(EVENT, "$") is EVENT
    assert path_value(EVENT, "$.detail.nothing") is MISSING
    assert path_value(EVENT, "$.resources[5]") is MISSING


def test_a_json_template_gets_each_value_as_json() -> None:
    out = _out(
        '{"instance": <instance>, "state": <state>, "count": <count>}',
        {"instance": "$.detail.instance-id", "state": "$.detail.state", "count": "$.detail.count"},
    )
    assert json.loads(out or "") == {"instance": "i-0123456789", "state": "RUNNING", "count": 3}


def test_a_placeholder_inside_a_string_gets_the_text_of_the_value() -> None:
    out = _out(
        '"<instance> is in state <state>"', {"instance": "$.detail.instance-id", "state": "$.detail.state"}
    )
    assert json.loads(out or "") == "i-0123456789 is in state RUNNING"
    out = _out(
        '{"message": "tags <tags>, count <count>"}', {"tags": "$.detail.tags", "count": "$.detail.count"}
    )
    assert json.loads(out or "") == {"message": 'tags ["a", "b"], count 3'}


def test_text_inserted_in_a_string_is_escaped() -> None:
    event = {**EVENT, "detail": {"q": 'say "hi"\n'}}
    target = {"InputTransformer": {"InputPathsMap": {"q": "$.detail.q"}, "InputTemplate": '{"m": "<q>!"}'}}
    assert json.loads(target_input(target, event, RULE, "r", "") or "") == {"m": 'say "hi"\n!'}


def test_a_missing_path_is_null_outside_strings_and_empty_inside() -> None:
    out = _out('{"a": <gone>, "b": "x<gone>y"}', {"gone": "$.detail.nothing"})
    assert json.loads(out or "") == {"a": None, "b": "xy"}


def test_predefined_variables_need_no_mapping_and_unknown_placeholders_stay() -> None:
    out = _out(
        '{"rule": <aws.events.rule-name>, "arn": "<aws.events.rule-arn>", "e": <aws.events.event.json>, '
        '"x": "<unknown>"}',
        {},
    )
    assert json.loads(out or "") == {"rule": "r", "arn": RULE, "e": EVENT, "x": "<unknown>"}


def test_input_and_input_path_and_the_default() -> None:
    assert target_input({"Input": '{"a": 1}'}, EVENT, RULE, "r", "") == '{"a": 1}'
    assert json.loads(target_input({"InputPath": "$.detail"}, EVENT, RULE, "r", "") or "") == EVENT["detail"]
    assert target_input({"InputPath": "$.nothing"}, EVENT, RULE, "r", "") is None
    assert json.loads(target_input({}, EVENT, RULE, "r", "") or "") == EVENT


def test_render_keeps_what_is_not_a_known_placeholder() -> None:
    assert render("a <b> <c>", {"b": "x"}) == 'a "x" <c>'


@pytest.mark.parametrize(
    "target, words",
    [
        (
            {
                "Id": "t",
                "Input": "{",
            },
            "not valid JSON",
        ),
        ({"Id": "t", "Input": "{}", "InputPath": "$.a"}, "Only one of"),
        ({"Id": "t", "InputPath": "detail"}, "InputPath"),
        ({"Id": "t", "InputPath": "$.a[*]"}, "InputPath"),
        ({"Id": "t", "InputTransformer": {"InputPathsMap": {"a b": "$.x"}, "InputTemplate": "<a>"}}, "key"),
        (
            {"Id": "t", "InputTransformer": {"InputPathsMap": {"aws.events.x": "$.x"}, "InputTemplate": "x"}},
            "key",
        ),
        ({"Id": "t", "InputTransformer": {"InputPathsMap": {"a": "x"}, "InputTemplate": "<a>"}}, "JSON path"),
        (
            {
                "Id": "t",
                "InputTransformer": {
                    "InputPathsMap": {f"k{i}": "$.a" for i in range(101)},
                    "InputTemplate": "x",
                },
            },
            "at most 100",
        ),
        ({"Id": "t", "InputTransformer": {"InputPathsMap": {}}}, "InputTemplate"),
    ],
)
def test_put_targets_refuses_bad_inputs(target: dict, words: str) -> None:
    with pytest.raises(TransformError, match=words):
        check_target_input(target)


def test_good_inputs_pass() -> None:
    check_target_input(
        {
            "Id": "t",
            "InputTransformer": {"InputPathsMap": {"a-1": "$.detail.x"}, "InputTemplate": '{"a": <a-1>}'},
        }
    )
    check_target_input({"Id": "t", "InputPath": "$.detail.containers[0].name"})
