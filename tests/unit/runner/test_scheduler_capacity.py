"""Capacity provider strategies (pure), against ECS's documented examples."""

from __future__ import annotations

from collections import Counter

from runner.scheduler.capacity import Item, assign, split


def test_the_base_comes_first_then_the_weights():
    # the example: base 2 on A, then weights 1:3 between A and B
    strategy = [Item("A", weight=1, base=2), Item("B", weight=3)]
    assert split(strategy, 1) == {"A": 1, "B": 0}
    assert split(strategy, 2) == {"A": 2, "B": 0}
    assert split(strategy, 6) == {"A": 3, "B": 3}
    assert split(strategy, 10) == {"A": 4, "B": 6}


def test_ecs_documentation_example_one_to_four():
    # "a weight of 1 for capacityProviderA and a weight of 4 for capacityProviderB: for every
    # one task that's run using capacityProviderA, four tasks would use capacityProviderB"
    strategy = [Item("A", weight=1), Item("B", weight=4)]
    assert split(strategy, 10) == {"A": 2, "B": 8}
    assert split(strategy, 5) == {"A": 1, "B": 4}


def test_equal_weights_split_evenly_and_weight_zero_gets_only_its_base():
    assert split([Item("A", 1), Item("B", 1)], 4) == {"A": 2, "B": 2}
    assert split([Item("A", 0, base=1), Item("B", 1)], 5) == {"A": 1, "B": 4}
    assert split([Item("only")], 3) == {"only": 3}  # a single provider of weight 0 takes all


def test_assigning_one_at_a_time_ends_at_the_split():
    strategy = [Item("A", weight=1, base=2), Item("B", weight=3)]
    order = assign(strategy, {}, 6)
    assert order[:2] == ["A", "A"] and Counter(order) == {"A": 3, "B": 3}
    # a scale-out from what runs now fills the provider furthest below its share
    assert Counter(assign(strategy, {"A": 3, "B": 3}, 4)) == {"A": 1, "B": 3}
    assert assign(strategy, {"A": 0, "B": 5}, 2) == ["A", "A"]  # the base is owed first


def test_every_prefix_of_an_assignment_stays_within_one_task_of_its_split():
    strategy = [Item("A", weight=2, base=1), Item("B", weight=3), Item("C", weight=0)]
    order = assign(strategy, {}, 50)
    for n in range(1, 51):
        got = Counter(order[:n])
        want = split(strategy, n)
        assert all(abs(got[p] - want[p]) <= 1 for p in want), (n, got, want)
    assert "C" not in order
