import random

import pytest

from discovery import model
from discovery.errors import InvalidInput, ResourceLimitExceeded, TooManyTagsException
from tests.unit.discovery.fixtures import instance, sample_index, service


def test_ids_have_the_cloud_map_shape():
    ident = model.new_id("ns")
    assert ident.startswith("ns-") and len(ident) == 19 and ident[3:].isalnum() and ident[3:].islower()


def test_query_parameters_must_all_match():
    index = sample_index()
    srv = index.services["srv-web"]
    chosen = model.select_instances(
        [instance("srv-web", "a", "10.0.0.1", color="blue", tier="x"),
         instance("srv-web", "b", "10.0.0.2", color="blue", tier="y")],
        srv, query={"color": "blue", "tier": "y"},
    )
    assert [i.id for i in chosen] == ["b"]


def test_optional_parameters_narrow_only_when_something_matches():
    srv = sample_index().services["srv-web"]
    pool = [instance("srv-web", "a", "10.0.0.1", zone="1"), instance("srv-web", "b", "10.0.0.2", zone="2")]
    assert [i.id for i in model.select_instances(pool, srv, optional={"zone": "2"})] == ["b"]
    assert {i.id for i in model.select_instances(pool, srv, optional={"zone": "9"})} == {"a", "b"}


def test_optional_parameters_never_empty_what_the_health_filter_alone_leaves():
    srv = sample_index().services["srv-web"]
    pool = [instance("srv-web", "ok", "10.0.0.1", zone="1"),
            instance("srv-web", "sick", "10.0.0.2", zone="2", health="UNHEALTHY")]
    for status in ("HEALTHY", "HEALTHY_OR_ELSE_ALL"):
        assert [i.id for i in model.select_instances(pool, srv, status, optional={"zone": "2"})] == ["ok"]
    assert [i.id for i in model.select_instances(pool, srv, "UNHEALTHY", optional={"zone": "1"})] == ["sick"]
    assert [i.id for i in model.select_instances(pool, srv, "ALL", optional={"zone": "2"})] == ["sick"]


def test_health_filters_follow_cloud_map():
    srv = sample_index().services["srv-web"]
    pool = [instance("srv-web", "ok", "10.0.0.1"), instance("srv-web", "bad", "10.0.0.2", health="UNHEALTHY")]
    ids = {s: [i.id for i in model.select_instances(pool, srv, s)] for s in
           ("HEALTHY", "UNHEALTHY", "ALL", "HEALTHY_OR_ELSE_ALL")}
    assert ids == {
        "HEALTHY": ["ok"], "UNHEALTHY": ["bad"], "ALL": ["ok", "bad"], "HEALTHY_OR_ELSE_ALL": ["ok"]
    }
    sick = [pool[1]]
    assert [i.id for i in model.select_instances(sick, srv, "HEALTHY_OR_ELSE_ALL")] == ["bad"]


def test_health_filter_is_ignored_for_services_without_health_checks():
    srv = service("srv-x", "ns-1", "x", [])
    pool = [instance("srv-x", "a", "10.0.0.1", health="UNKNOWN")]
    assert len(model.select_instances(pool, srv, "HEALTHY")) == 1


def test_an_integer_parameter_defaults_when_absent_or_null_and_is_bounded():
    assert model.integer({}, "MaxResults", 100, 1, 1000) == 100
    assert model.integer({"MaxResults": None}, "MaxResults", 100, 1, 1000) == 100
    assert model.integer({"MaxResults": 1000}, "MaxResults", 100, 1, 1000) == 1000
    for bad in (0, 1001, True, "5", 2.0):
        with pytest.raises(InvalidInput):
            model.integer({"MaxResults": bad}, "MaxResults", 100, 1, 1000)


def test_max_results_caps_the_answer():
    srv = sample_index().services["srv-web"]
    pool = [instance("srv-web", str(n), "10.0.0.1") for n in range(20)]
    assert len(model.select_instances(pool, srv, max_results=5, rng=random.Random(0))) == 5


def test_attribute_limits_raise_cloud_maps_errors():
    with pytest.raises(ResourceLimitExceeded):
        model.check_attributes({f"k{n}": "v" for n in range(31)})
    with pytest.raises(InvalidInput):
        model.check_attributes({"k" * 256: "v"})
    with pytest.raises(InvalidInput):
        model.check_attributes({"k": "v" * 1025})
    with pytest.raises(InvalidInput):
        model.check_attributes({"k": 5})
    assert model.check_attributes({"k" * 255: "v" * 1024})


def test_services_with_records_require_the_matching_attributes():
    srv = sample_index().services["srv-web"]
    with pytest.raises(InvalidInput):
        model.check_instance_for_service({"AWS_INSTANCE_PORT": "80"}, srv)
    with pytest.raises(InvalidInput):
        model.check_instance_for_service({"AWS_INSTANCE_IPV4": "10.0.0.300", "AWS_INSTANCE_PORT": "80"}, srv)
    with pytest.raises(InvalidInput):
        model.check_instance_for_service({"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "0"}, srv)
    model.check_instance_for_service({"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80"}, srv)


def test_dns_config_rules():
    assert model.check_dns_config({"DnsRecords": [{"Type": "A", "TTL": 10}]})["RoutingPolicy"] == "MULTIVALUE"
    for bad in (
        {"DnsRecords": []},
        {"DnsRecords": [{"Type": "MX", "TTL": 1}]},
        {"DnsRecords": [{"Type": "A", "TTL": -1}]},
        {"DnsRecords": [{"Type": "A", "TTL": 1}, {"Type": "A", "TTL": 2}]},
        {"DnsRecords": [{"Type": "CNAME", "TTL": 1}]},
        {"DnsRecords": [{"Type": "CNAME", "TTL": 1}, {"Type": "A", "TTL": 1}], "RoutingPolicy": "WEIGHTED"},
        {"DnsRecords": [{"Type": "A", "TTL": 1}], "RoutingPolicy": "NEAREST"},
    ):
        with pytest.raises(InvalidInput):
            model.check_dns_config(bad)


def test_health_check_config_defaults_and_limits():
    assert model.check_health_check_config({"Type": "HTTP"}) == {
        "Type": "HTTP", "FailureThreshold": 1, "ResourcePath": "/"}
    bads = ({"Type": "UDP"}, {"Type": "HTTP", "FailureThreshold": 11}, {"Type": "TCP", "ResourcePath": "/"})
    for bad in bads:
        with pytest.raises(InvalidInput):
            model.check_health_check_config(bad)


def test_names_are_validated():
    assert model.check_namespace_name("Example.Internal.", "DNS") == "example.internal"
    for bad in ("-bad.example", "a..b", "x" * 254, "arn:aws:x"):
        with pytest.raises(InvalidInput):
            model.check_namespace_name(bad, "DNS")
    with pytest.raises(InvalidInput):
        model.check_namespace_name("has space", "HTTP")
    with pytest.raises(InvalidInput):
        model.check_service_name("-web")
    with pytest.raises(InvalidInput):
        model.check_instance_id("bad id")


def test_tags_and_the_health_interval_extension():
    with pytest.raises(TooManyTagsException):
        model.check_tags([{"Key": f"k{n}", "Value": ""} for n in range(51)])
    assert model.health_interval([{"Key": model.HEALTH_INTERVAL_TAG, "Value": "1"}]) == 1.0
    assert model.health_interval([]) == model.DEFAULT_HEALTH_INTERVAL
    with pytest.raises(InvalidInput):
        model.health_interval([{"Key": model.HEALTH_INTERVAL_TAG, "Value": "0.5"}])
