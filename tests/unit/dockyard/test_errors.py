import pytest

from dockyard.aws import errors
from dockyard.aws.errors import CODES, AwsError, InvalidParameterException, ValidationException, register


def test_a_direct_subclass_answers_with_its_own_name():
    assert ValidationException("x").body() == {"__type": "ValidationException", "message": "x"}


def test_a_kind_of_an_error_answers_with_its_parents_type():
    class QueryError(InvalidParameterException):  # type: ignore[misc, valid-type]
        pass

    err = QueryError("bad expression")
    assert isinstance(err, AwsError)
    assert err.body()["__type"] == "InvalidParameterException"
    assert err.status == 400
    assert CODES["InvalidParameterException"] is InvalidParameterException


def test_a_name_is_registered_only_once():
    with pytest.raises(ValueError, match="InvalidParameterException registered twice"):
        register("InvalidParameterException")
    with pytest.raises(ValueError, match="ValidationException registered twice"):

        class ValidationException(AwsError):
            pass

    assert CODES["ValidationException"] is errors.ValidationException


def test_a_registered_error_keeps_its_status():
    cls = register("DockyardTestOnlyLimitException", 429)
    try:
        assert cls("slow down").status == 429
        assert CODES["DockyardTestOnlyLimitException"] is cls
    finally:
        del CODES["DockyardTestOnlyLimitException"]


def test_the_parts_errors_load_together_without_a_duplicate():
    import discovery.errors
    import registry.gc
    import runner.errors
    import runner.instances
    import runner.services

    assert runner.errors.InvalidParameterException is registry.gc.InvalidParameterException
    assert runner.errors.ResourceNotFoundException is discovery.errors.ResourceNotFoundException
