"""Request validators compiled from botocore's service models."""

from typing import Any

import pytest

from dockyard.aws import model
from dockyard.aws.errors import InvalidParameterException, ValidationException
from dockyard.aws.protocol import CLOUDMAP, ECS


def check(service: str, op: str, params: dict[str, Any], error: type = ValidationException) -> None:
    model.validator(model.operation(service, op), error)(params)


def test_a_target_prefix_names_its_model():
    assert model.service(ECS).service_name == "ecs"
    assert model.service(CLOUDMAP).metadata["targetPrefix"] == CLOUDMAP
    with pytest.raises(KeyError):
        model.operation(ECS, "NoSuchOperation")


def test_a_good_request_passes_and_unknown_members_are_left_alone():
    check(CLOUDMAP, "DiscoverInstances", {
        "NamespaceName": "local", "ServiceName": "web", "MaxResults": 10, "HealthStatus": "HEALTHY",
        "QueryParameters": {"az": "a"}, "SomethingNew": object(),
    })
    check(ECS, "ListClusters", {})


OK = {"NamespaceName": "local", "ServiceName": "w"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ServiceName": "web"}, "NamespaceName is required."),
        ({"NamespaceName": "local", "ServiceName": 5}, "ServiceName must be a string."),
        ({**OK, "MaxResults": 0}, "MaxResults must be at least 1."),
        ({**OK, "MaxResults": "5"}, "MaxResults must be an integer."),
        ({**OK, "MaxResults": True}, "MaxResults must be an integer."),
        ({**OK, "HealthStatus": "GREEN"}, "HealthStatus must be one of"),
        ({**OK, "NamespaceName": "x" * 1025}, "NamespaceName must have at most 1024 characters."),
        ({**OK, "QueryParameters": []}, "QueryParameters must be a map."),
        ({**OK, "QueryParameters": {"k": 1}},
         "QueryParameters[k] must be a string."),
    ],
)
def test_a_bad_request_names_the_member_and_the_rule(params: dict[str, Any], message: str):
    with pytest.raises(ValidationException) as e:
        check(CLOUDMAP, "DiscoverInstances", params)
    assert e.value.message.startswith(message)


def test_nested_members_are_named_by_their_path_and_the_error_class_is_the_callers():
    bad = {"cluster": "c", "taskDefinition": "t", "overrides": {"containerOverrides": [{"cpu": "x"}]}}
    where = r"overrides.containerOverrides\[0\].cpu"
    with pytest.raises(InvalidParameterException, match=where + " must be an integer"):
        check(ECS, "RunTask", bad, InvalidParameterException)
    with pytest.raises(InvalidParameterException, match="must be a list"):
        check(ECS, "DescribeClusters", {"clusters": "c"}, InvalidParameterException)


def test_a_recursive_shape_compiles():
    # EventBridge Scheduler and ECS models have no recursion; App Mesh's route specs nest deeply.
    assert model.validator(model.operation("appmesh", "CreateRoute"), ValidationException) is not None


async def test_a_validated_service_checks_its_modelled_operations_and_leaves_its_own_alone():
    from dockyard.aws import sigv4
    from dockyard.aws.protocol import Operations

    ops = Operations({"K": "S"}.get)

    async def stub(call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    ops.add(CLOUDMAP, "DiscoverInstances", stub)
    ops.validate(CLOUDMAP, InvalidParameterException)
    ops.add(CLOUDMAP, "WatchChanges", stub)  # not in the model: its handler checks it
    ops.add(CLOUDMAP, "GetNamespace", stub)

    async def answer(op: str, body: bytes) -> tuple[int, bytes]:
        headers = {"host": "h", "content-type": "application/x-amz-json-1.1"}
        headers["x-amz-target"] = f"{CLOUDMAP}.{op}"
        signed = sigv4.sign("POST", "/", headers, body, "K", "S", "us-east-1", "servicediscovery")
        return await ops.answer("POST", "/", "", signed, body, "")

    ok = (200, b'{"ok":true}')
    assert await answer("DiscoverInstances", b'{"NamespaceName": "n", "ServiceName": "s"}') == ok
    assert await answer("DiscoverInstances", b'{"NamespaceName": "n"}') == (
        400, b'{"__type":"InvalidParameterException","message":"ServiceName is required."}'
    )
    assert (await answer("GetNamespace", b"{}"))[0] == 400
    assert await answer("WatchChanges", b'{"anything": 1}') == (200, b'{"ok":true}')
