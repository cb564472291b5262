from dockyard.aws.errors import AwsError, ValidationException, error_type


def test_a_direct_subclass_answers_with_its_own_name():
    assert ValidationException("x").body() == {"__type": "ValidationException", "message": "x"}


def test_a_kind_of_an_error_answers_with_its_parents_type():
    Invalid = error_type("InvalidParameterException")

    class QueryError(Invalid):  # type: ignore[misc, valid-type]
        pass

    err = QueryError("bad expression")
    assert isinstance(err, AwsError)
    assert err.body()["__type"] == "InvalidParameterException"
    assert err.status == 400
