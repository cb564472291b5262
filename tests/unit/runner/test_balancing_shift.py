"""runner.balancing, traffic-shifting deployments behind a listener rule: ECS's checks of
``advancedConfiguration``, which group a new revision's tasks join, and the weights each
rule gets at each stage of BLUE_GREEN, CANARY and LINEAR (with runner.shift)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runner import balancing, shift
from runner.errors import InvalidParameterException

LB = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef"
BLUE = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/blue/0123456789abcdef"
GREEN = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/green/0123456789abcdef"
OTHER = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/other/0123456789abcdef"
PROD = "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/web/0123456789abcdef/l/r1"
TEST = "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/web/0123456789abcdef/l/r2"
ROLE = "arn:aws:iam::000000000000:role/ecs-elb"


@dataclass(frozen=True)
class Group:
    arn: str
    target_type: str = "ip"
    deregistration_delay: float = 30.0
    load_balancers: tuple[str, ...] = (LB,)


GROUPS = {BLUE: Group(BLUE), GREEN: Group(GREEN), OTHER: Group(OTHER, target_type="instance")}
RULES = {PROD: (BLUE, GREEN), TEST: (BLUE, GREEN), "half": (BLUE,)}
DEFN = {"networkMode": "awsvpc",
        "containerDefinitions": [{"name": "app", "portMappings": [{"containerPort": 80}]}]}


def adv(**over) -> dict:
    return {"alternateTargetGroupArn": GREEN, "productionListenerRule": PROD, "testListenerRule": TEST,
            "roleArn": ROLE, **over}


def entry(**over) -> dict:
    return {"targetGroupArn": BLUE, "containerName": "app", "containerPort": 80,
            "advancedConfiguration": adv(), **over}


def check(entries: list) -> list:
    return balancing.check(entries, DEFN, GROUPS.get, RULES.get)


def test_a_valid_advanced_configuration_is_kept() -> None:
    assert check([entry()]) == [entry()]
    no_test = {k: v for k, v in adv().items() if k != "testListenerRule"}
    assert check([entry(advancedConfiguration=no_test)])[0]["advancedConfiguration"] == no_test


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("x", "advancedConfiguration must be an object"),
        (adv(alternateTargetGroupArn=None), "alternateTargetGroupArn must be specified"),
        (adv(productionListenerRule=""), "productionListenerRule must be specified"),
        (adv(roleArn=None), "roleArn must be specified"),
        (adv(alternateTargetGroupArn=BLUE), "must be different from the targetGroupArn"),
        (adv(alternateTargetGroupArn=BLUE.replace("blue", "gone")), "does not exist"),
        (adv(alternateTargetGroupArn=OTHER), "has target type instance"),
        (adv(productionListenerRule=PROD + "x"), f"The listener rule {PROD}x does not exist"),
        (adv(productionListenerRule="half"), "must forward to both the target group"),
        (adv(testListenerRule="half"), "must forward to both the target group"),
        (adv(testListenerRule=7), "testListenerRule must be a listener rule ARN"),
    ],
)
def test_bad_advanced_configurations_are_refused(config, words) -> None:
    with pytest.raises(InvalidParameterException, match=words):
        check([entry(advancedConfiguration=config)])


def test_without_a_rule_lookup_every_rule_is_unknown() -> None:
    with pytest.raises(InvalidParameterException, match="does not exist"):
        balancing.check([entry()], DEFN, GROUPS.get, None)


def test_the_new_revision_joins_the_group_its_source_does_not_use() -> None:
    plain = {"targetGroupArn": OTHER, "containerName": "app", "containerPort": 80}
    first = balancing.green_entries([entry(), plain], [entry(), plain])
    assert [e["targetGroupArn"] for e in first] == [GREEN, OTHER]
    assert first[0]["advancedConfiguration"]["alternateTargetGroupArn"] == BLUE
    second = balancing.green_entries(first, [entry(), plain])  # the next deployment takes turns
    assert [e["targetGroupArn"] for e in second] == [BLUE, OTHER]
    assert balancing.advanced([plain, entry()]) == [entry()]


def weights(strategy: shift.Strategy, state: shift.State, green: list) -> dict:
    t = shift.traffic(strategy, state)
    return dict(balancing.rule_weights(green, t.green, t.test))


GREEN_ENTRIES = balancing.green_entries([entry()], [entry()])


@pytest.mark.parametrize(
    ("strategy", "stages"),
    [
        (shift.Strategy("BLUE_GREEN"), [("SCALE_UP", -1, 0, False), ("TEST_TRAFFIC_SHIFT", -1, 0, True),
                                         ("PRODUCTION_TRAFFIC_SHIFT", 0, 100, True)]),
        (shift.Strategy("CANARY", canary_percent=20), [("PRODUCTION_TRAFFIC_SHIFT", 0, 20, True),
                                                        ("PRODUCTION_TRAFFIC_SHIFT", 1, 100, True),
                                                        ("BAKE_TIME", 1, 100, True)]),
        (shift.Strategy("LINEAR", step_percent=33.3), [("PRODUCTION_TRAFFIC_SHIFT", 0, 33, True),
                                                        ("PRODUCTION_TRAFFIC_SHIFT", 1, 67, True),
                                                        ("PRODUCTION_TRAFFIC_SHIFT", 2, 100, True),
                                                        ("PRODUCTION_TRAFFIC_SHIFT", 3, 100, True)]),
    ],
)
def test_the_rules_weights_follow_the_strategy(strategy, stages) -> None:
    for stage, step, share, test in stages:
        if step >= len(strategy.steps()):
            continue
        got = weights(strategy, shift.State(stage=stage, step=step), GREEN_ENTRIES)
        assert got[PROD] == {BLUE: 100 - share, GREEN: share}, (stage, step)
        assert got[TEST] == ({BLUE: 0, GREEN: 100} if test else {BLUE: 100, GREEN: 0}), (stage, step)


def test_a_rollback_puts_every_rule_back_on_the_source_and_success_on_the_new_revision() -> None:
    s = shift.Strategy("CANARY", canary_percent=10)
    back = weights(s, shift.State(stage="BAKE_TIME", outcome="ROLLBACK"), GREEN_ENTRIES)
    assert back == {PROD: {BLUE: 100, GREEN: 0}, TEST: {BLUE: 100, GREEN: 0}}
    done = weights(s, shift.State(stage="CLEAN_UP", outcome="SUCCESSFUL"), GREEN_ENTRIES)
    assert done[PROD] == {BLUE: 0, GREEN: 100}
    # the next deployment's green is BLUE again: the weights are named by group, not by role
    nxt = balancing.green_entries(GREEN_ENTRIES, [entry()])
    t = shift.traffic(s, shift.State(stage="PRODUCTION_TRAFFIC_SHIFT", step=0))
    assert dict(balancing.rule_weights(nxt, t.green, t.test))[PROD] == {GREEN: 90, BLUE: 10}


def test_a_rule_without_a_test_rule_moves_only_production() -> None:
    no_test = {k: v for k, v in adv().items() if k != "testListenerRule"}
    green = balancing.green_entries([], [entry(advancedConfiguration=no_test)])
    assert balancing.rule_weights(green, 50, True) == [(PROD, {BLUE: 50, GREEN: 50})]
