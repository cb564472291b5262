"""The scheduler: feasibility with named reasons, then strategies chained in order."""

from __future__ import annotations

import pytest

from runner.errors import InvalidParameterException
from runner.scheduler import (
    FARGATE_STRATEGY,
    Constraint,
    HostView,
    NoHostFits,
    Placement,
    Strategy,
    TaskNeeds,
    TaskView,
    needs_for,
    parse_constraints,
    parse_required_attributes,
    parse_strategies,
    place,
    schedule,
)


def host(id_: str, cpu: int = 4096, memory: int = 8192, zone: str = "a", tasks: int = 0,
         group: str = "service:web", **kw) -> HostView:
    attrs = {"ecs.availability-zone": f"us-east-1{zone}", "ecs.os-type": "linux", **kw.pop("attrs", {})}
    return HostView(id_, cpu, memory, attributes=attrs,
                    tasks=tuple(TaskView(f"{id_}-t{i}", group) for i in range(tasks)), **kw)


NEEDS = TaskNeeds(cpu=256, memory=512, group="service:web")


def needs(**kw) -> TaskNeeds:
    return TaskNeeds(**{"cpu": 256, "memory": 512, "group": "service:web", **kw})


# -- feasibility ---------------------------------------------------------------------------
# (description, host, needs, expected reasons)
FEASIBILITY = [
    ("enough of everything", host("h"), NEEDS, ()),
    ("too little cpu", host("h", cpu=128), NEEDS, ("RESOURCE:CPU",)),
    ("too little memory", host("h", memory=256), NEEDS, ("RESOURCE:MEMORY",)),
    ("too little of both", host("h", cpu=0, memory=0), NEEDS, ("RESOURCE:CPU", "RESOURCE:MEMORY")),
    ("exactly enough", host("h", cpu=256, memory=512), NEEDS, ()),
    ("tcp port taken", host("h", ports=frozenset({(80, "tcp")})), needs(ports=((80, "tcp"),)),
     ("RESOURCE:PORTS",)),
    ("udp port taken", host("h", ports=frozenset({(53, "udp")})), needs(ports=((53, "udp"),)),
     ("RESOURCE:PORTS_UDP",)),
    ("same port other protocol", host("h", ports=frozenset({(80, "udp")})), needs(ports=((80, "tcp"),)),
     ()),
    ("agent down", host("h", connected=False), NEEDS, ("AGENT",)),
    ("group already there", host("h", tasks=1), needs(constraints=(Constraint("distinctInstance"),)),
     ("DistinctInstance placement constraint unsatisfied.",)),
    ("other group there", host("h", tasks=1, group="service:api"),
     needs(constraints=(Constraint("distinctInstance"),)), ()),
    ("memberOf satisfied", host("h"),
     needs(constraints=(Constraint("memberOf", "attribute:ecs.availability-zone == us-east-1a"),)), ()),
    ("memberOf unsatisfied", host("h", zone="b"),
     needs(constraints=(Constraint("memberOf", "attribute:ecs.availability-zone == us-east-1a"),)),
     ("MemberOf placement constraint unsatisfied.",)),
    ("memberOf on task groups", host("h", tasks=1, group="service:db"),
     needs(constraints=(Constraint("memberOf", "task:group == service:db"),)), ()),
    ("memberOf on instanceId", host("h"), needs(constraints=(Constraint("memberOf", "instanceId != h"),)),
     ("MemberOf placement constraint unsatisfied.",)),
    ("required attribute present", host("h", attrs={"ecs.capability.task-eni": None}),
     needs(attributes=(("ecs.capability.task-eni", None),)), ()),
    ("required attribute absent", host("h"), needs(attributes=(("ecs.capability.task-eni", None),)),
     ("ATTRIBUTE",)),
    ("required value equal", host("h"), needs(attributes=(("ecs.os-type", "linux"),)), ()),
    ("required value differs", host("h"), needs(attributes=(("ecs.os-type", "windows"),)), ("ATTRIBUTE",)),
    ("value required, host has the name only", host("h", attrs={"stack": None}),
     needs(attributes=(("stack", "prod"),)), ("ATTRIBUTE",)),
    ("no value required, host has one", host("h", attrs={"stack": "prod"}),
     needs(attributes=(("stack", None),)), ()),
    ("attribute missing and short of memory", host("h", memory=1),
     needs(attributes=(("gpu", None),)), ("ATTRIBUTE", "RESOURCE:MEMORY")),
]


@pytest.mark.parametrize(("h", "n", "reasons"), [f[1:] for f in FEASIBILITY], ids=[f[0] for f in FEASIBILITY])
def test_each_check_names_why_a_host_is_rejected(h, n, reasons):
    result = schedule([h], n)
    if reasons:
        assert isinstance(result, NoHostFits)
        assert result.rejections[0].reasons == reasons
        assert result.reason == reasons[0]
    else:
        assert isinstance(result, Placement) and result.host_id == "h"


def test_no_host_fits_is_a_result_that_explains_the_closest_host():
    result = schedule([host("full", cpu=0, memory=0), host("small", memory=100)], NEEDS)
    assert not result.fits
    assert result.closest.host_id == "small"
    assert result.explain("service web") == (
        "service web was unable to place a task because no container instance met all of its "
        "requirements. The closest matching container-instance small has insufficient memory available."
    )


def test_a_missing_attribute_is_explained_as_ecs_does_and_named():
    n = needs(attributes=(("com.amazonaws.ecs.capability.logging-driver.awsfirelens", None),
                          ("ecs.os-type", "windows"), ("ecs.availability-zone", None)))
    result = schedule([host("h1"), host("h2", connected=False)], n)
    assert isinstance(result, NoHostFits) and result.reason == "ATTRIBUTE"
    assert result.closest.host_id == "h1"
    assert result.closest.missing == (
        "com.amazonaws.ecs.capability.logging-driver.awsfirelens", "ecs.os-type=windows")
    assert result.explain("service web") == (
        "service web was unable to place a task because no container instance met all of its "
        "requirements. The closest matching container-instance h1 is missing an attribute required by "
        "your task (com.amazonaws.ecs.capability.logging-driver.awsfirelens, ecs.os-type=windows)."
    )


def test_only_hosts_with_the_required_attributes_are_candidates():
    hosts = [host("plain"), host("gpu", attrs={"gpu": "a100"}), host("other-gpu", attrs={"gpu": "t4"})]
    for _ in range(5):
        assert place(hosts, needs(attributes=(("gpu", "a100"),)), count=1, seed=_).hosts == ["gpu"]


def test_required_attributes_are_read_from_a_described_task_definition():
    described = [
        {"name": "ecs.capability.task-eni"},
        {"name": "stack", "value": "prod", "targetType": "container-instance"},
        {"name": "ignored", "targetType": "something-else"},
        {"value": "no name"},
        "junk",
    ]
    assert parse_required_attributes(described) == (("ecs.capability.task-eni", None), ("stack", "prod"))
    assert parse_required_attributes(None) == ()


def test_an_empty_cluster_says_there_are_no_container_instances():
    result = schedule([], NEEDS)
    assert isinstance(result, NoHostFits)
    assert "No Container Instances were found" in result.explain()


def test_the_placement_lists_the_hosts_that_were_rejected():
    result = schedule([host("a", memory=1), host("b")], NEEDS)
    assert result.host_id == "b" and [r.host_id for r in result.rejections] == ["a"]


# -- strategies ----------------------------------------------------------------------------
def pick(hosts, *strategy: Strategy, seed: int | None = 1, **kw) -> str:
    result = schedule(hosts, needs(strategy=strategy, **kw), seed=seed)
    assert isinstance(result, Placement)
    return result.host_id


def test_binpack_memory_picks_the_host_with_least_memory_left():
    hosts = [host("roomy", memory=8000), host("tight", memory=600), host("middle", memory=2000)]
    assert pick(hosts, Strategy("binpack", "memory")) == "tight"


def test_binpack_cpu_picks_the_host_with_least_cpu_left():
    hosts = [host("roomy", cpu=4096), host("tight", cpu=300, memory=100000)]
    assert pick(hosts, Strategy("binpack", "cpu")) == "tight"


def test_binpack_ignores_hosts_that_do_not_fit():
    hosts = [host("too-small", memory=100), host("ok", memory=1000)]
    assert pick(hosts, Strategy("binpack", "memory")) == "ok"


def test_spread_by_instance_picks_the_host_with_fewest_tasks_of_the_group():
    hosts = [host("busy", tasks=3), host("idle", tasks=0), host("some", tasks=1)]
    assert pick(hosts, Strategy("spread", "instanceId")) == "idle"


def test_spread_counts_only_tasks_of_the_same_group():
    hosts = [host("web", tasks=2), host("api", tasks=5, group="service:api")]
    assert pick(hosts, Strategy("spread", "instanceId")) == "api"


def test_spread_by_attribute_counts_tasks_over_every_host_with_that_value():
    # zone a has 2 tasks (one on a full host), zone b has 1: zone b wins though b1 holds a task.
    hosts = [host("a1", zone="a", tasks=1), host("a2", zone="a", tasks=1, memory=0),
             host("b1", zone="b", tasks=1), host("a3", zone="a")]
    assert pick(hosts, Strategy("spread", "attribute:ecs.availability-zone")) == "b1"


def test_spread_by_attribute_puts_hosts_without_it_last():
    hosts = [HostView("bare", 4096, 8192), host("rack", attrs={"rack": "r1"}, tasks=4)]
    assert pick(hosts, Strategy("spread", "attribute:rack")) == "rack"


def test_random_is_reproducible_with_a_seed_and_varies_across_seeds():
    hosts = [host(f"h{i}") for i in range(8)]
    first = [pick(hosts, Strategy("random"), seed=s) for s in range(20)]
    assert first == [pick(hosts, Strategy("random"), seed=s) for s in range(20)]
    assert len(set(first)) > 1


def test_strategies_chain_in_the_given_order():
    hosts = [
        host("a-tight", zone="a", memory=600, tasks=1),
        host("b-roomy", zone="b", memory=8000),
        host("b-tight", zone="b", memory=700),
    ]
    zone = Strategy("spread", "attribute:ecs.availability-zone")
    spread_then_binpack = (zone, Strategy("binpack", "memory"))
    binpack_then_spread = (Strategy("binpack", "memory"), zone)
    assert pick(hosts, *spread_then_binpack) == "b-tight"
    assert pick(hosts, *binpack_then_spread) == "a-tight"


def test_ties_are_broken_by_host_id():
    assert pick([host("b"), host("a")], Strategy("spread", "instanceId")) == "a"


# -- several tasks -------------------------------------------------------------------------
def test_placing_several_tasks_charges_each_to_its_host():
    placed = place([host("a"), host("b"), host("c")], needs(strategy=(Strategy("spread", "instanceId"),)),
                   count=6)
    assert sorted(placed.hosts) == ["a", "a", "b", "b", "c", "c"]


def test_distinct_instance_places_at_most_one_task_per_host_and_reports_the_rest():
    distinct = needs(constraints=(Constraint("distinctInstance"),))
    placed = place([host("a"), host("b")], distinct, count=3, seed=3)
    assert sorted(placed.hosts) == ["a", "b"]
    assert [f.reason for f in placed.failures] == ["DistinctInstance placement constraint unsatisfied."]


def test_binpack_fills_one_host_before_the_next():
    placed = place([host("a", memory=1024), host("b", memory=4096)],
                   needs(strategy=(Strategy("binpack", "memory"),)), count=3)
    assert placed.hosts == ["a", "a", "b"]


def test_ports_taken_by_an_earlier_placement_block_the_next():
    placed = place([host("a"), host("b")], needs(ports=((80, "tcp"),)), count=3, seed=0)
    assert sorted(placed.hosts) == ["a", "b"] and placed.failures[0].reason == "RESOURCE:PORTS"


def test_the_fargate_strategy_spreads_over_hosts():
    placed = place([host("a"), host("b")], needs(strategy=FARGATE_STRATEGY), count=2)
    assert sorted(placed.hosts) == ["a", "b"]


# -- request parsing -----------------------------------------------------------------------
def test_placement_input_is_parsed_into_values():
    raw = [{"type": "binpack", "field": "MEMORY"}, {"type": "spread", "field": "instanceId"},
           {"type": "random"}]
    assert parse_strategies(raw) == (
        Strategy("binpack", "memory"), Strategy("spread", "instanceId"), Strategy("random"))
    assert parse_constraints([{"type": "distinctInstance"},
                              {"type": "memberOf", "expression": "attribute:a == b"}]) == (
        Constraint("distinctInstance"), Constraint("memberOf", "attribute:a == b"))


@pytest.mark.parametrize(
    ("strategies", "constraints"),
    [
        ([{"type": "binpack", "field": "disk"}], None),
        ([{"type": "spread"}], None),
        ([{"type": "pack"}], None),
        (None, [{"type": "memberOf"}]),
        (None, [{"type": "memberOf", "expression": "attribute:a =="}]),
        (None, [{"type": "sameInstance"}]),
        (None, "distinctInstance"),
    ],
)
def test_bad_placement_input_is_an_invalid_parameter(strategies, constraints):
    with pytest.raises(InvalidParameterException):
        parse_strategies(strategies)
        parse_constraints(constraints)


def test_the_needs_of_a_task_definition_include_its_own_constraints_and_host_ports():
    from runner import taskdef

    td = taskdef.parse({
        "family": "web", "networkMode": "bridge", "memory": "512",
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
        "containerDefinitions": [{"name": "c", "image": "busybox", "cpu": 128,
                                  "portMappings": [{"containerPort": 80, "hostPort": 8080}]}],
    })
    n = needs_for(td, constraints=(Constraint("distinctInstance"),), strategy=(Strategy("random"),))
    assert (n.cpu, n.memory, n.ports, n.group) == (128, 512, ((8080, "tcp"),), "family:web")
    assert [c.type for c in n.constraints] == ["memberOf", "distinctInstance"]
    assert n.strategy == (Strategy("random"),)
    assert needs_for(td, launch_type="FARGATE").strategy == FARGATE_STRATEGY


def test_the_needs_of_a_task_definition_include_its_required_attributes():
    from runner import taskdef

    td = taskdef.parse({
        "family": "web", "networkMode": "awsvpc", "memory": "512",
        "containerDefinitions": [{"name": "c", "image": "busybox",
                                  "logConfiguration": {"logDriver": "awsfirelens"}}],
    })
    names = {name for name, _ in needs_for(td).attributes}
    assert {"ecs.capability.task-eni", "com.amazonaws.ecs.capability.logging-driver.awsfirelens"} <= names
