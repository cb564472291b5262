"""The protection period (pure): ECS's default, bounds and refusals."""

from __future__ import annotations

import pytest

from runner.errors import InvalidParameterException
from runner.protection import expiry


def test_protection_lasts_two_hours_by_default_and_up_to_48():
    assert expiry(True, None, 100.0) == 100.0 + 7200
    assert expiry(True, 1, 0.0) == 60.0
    assert expiry(True, 2880, 0.0) == 2880 * 60.0
    assert expiry(False, None, 0.0) is None


@pytest.mark.parametrize(("enabled", "minutes", "says"), [
    (True, 0, "between 1 and 2880"),
    (True, 2881, "between 1 and 2880"),
    (True, "60", "between 1 and 2880"),
    (True, True, "between 1 and 2880"),
    ("yes", None, "protectionEnabled"),
    (False, 10, "only be given with protectionEnabled true"),
])
def test_bad_periods_are_refused(enabled, minutes, says):
    with pytest.raises(InvalidParameterException, match=says):
        expiry(enabled, minutes, 0.0)
