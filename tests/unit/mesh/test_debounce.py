from __future__ import annotations

from mesh.debounce import Debounce


def test_nothing_pending_nothing_due():
    d = Debounce()
    assert d.deadline() is None and not d.due(100.0)


def test_churn_waits_for_quiet():
    d = Debounce(quiet=0.1, bound=1.0)
    d.churn(10.0)
    assert not d.due(10.05)
    d.churn(10.08)
    assert d.deadline() == 10.08 + 0.1
    assert not d.due(10.15) and d.due(10.19)
    d.pushed()
    assert d.deadline() is None


def test_steady_churn_is_pushed_at_the_bound():
    d = Debounce(quiet=0.1, bound=1.0)
    t = 10.0
    while t < 10.95:
        d.churn(t)
        assert not d.due(t)
        t += 0.05
    d.churn(t)
    assert d.deadline() == 11.0 and d.due(11.0)


def test_an_operator_change_is_due_at_once_and_takes_the_churn_along():
    d = Debounce()
    d.churn(5.0)
    d.urgent(5.01)
    assert d.due(5.01)
    d.pushed()
    d.churn(6.0)
    assert not d.due(6.0)  # the urgency went with the push
