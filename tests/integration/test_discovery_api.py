"""Cloud Map's API through the real aws CLI and boto3."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.support.discovery import dns_namespace, dns_service, unique
from tests.support.server import Dockyard


def code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_namespace_lifecycle_through_the_aws_cli(dockyard: Dockyard):
    name = unique("http")
    op = dockyard.aws("servicediscovery", "create-http-namespace", "--name", name, "--description", "d1")
    operation = dockyard.aws("servicediscovery", "get-operation", "--operation-id", op["OperationId"])
    assert operation["Operation"]["Status"] == "SUCCESS"
    assert operation["Operation"]["Type"] == "CREATE_NAMESPACE"
    ns_id = operation["Operation"]["Targets"]["NAMESPACE"]
    ns = dockyard.aws("servicediscovery", "get-namespace", "--id", ns_id)["Namespace"]
    assert ns["Arn"] == f"arn:aws:servicediscovery:us-east-1:000000000000:namespace/{ns_id}"
    assert ns["Type"] == "HTTP" and ns["Name"] == name and ns["Description"] == "d1"
    assert ns["Id"].startswith("ns-") and len(ns["Id"]) == 19
    listed = dockyard.aws(
        "servicediscovery", "list-namespaces", "--filters", f"Name=NAME,Values={name},Condition=EQ"
    )["Namespaces"]
    assert [n["Id"] for n in listed] == [ns_id]
    dockyard.aws("servicediscovery", "update-http-namespace", "--id", ns_id, "--namespace", "Description=d2")
    assert (
        dockyard.aws("servicediscovery", "get-namespace", "--id", ns_id)["Namespace"]["Description"] == "d2"
    )
    dockyard.aws("servicediscovery", "delete-namespace", "--id", ns_id)
    gone = dockyard.aws("servicediscovery", "get-namespace", "--id", ns_id, check=False)
    assert gone.returncode != 0 and "NamespaceNotFound" in gone.stderr


def test_public_and_private_dns_namespaces_carry_their_soa_ttl(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    name = unique("pub") + ".example"
    op = sd.create_public_dns_namespace(Name=name, Properties={"DnsProperties": {"SOA": {"TTL": 120}}})
    ns_id = sd.get_operation(OperationId=op["OperationId"])["Operation"]["Targets"]["NAMESPACE"]
    ns = sd.get_namespace(Id=ns_id)["Namespace"]
    assert ns["Type"] == "DNS_PUBLIC" and ns["Properties"]["DnsProperties"]["SOA"]["TTL"] == 120
    sd.update_public_dns_namespace(
        Id=ns_id, Namespace={"Properties": {"DnsProperties": {"SOA": {"TTL": 60}}}}
    )
    assert sd.get_namespace(Id=ns_id)["Namespace"]["Properties"]["DnsProperties"]["SOA"]["TTL"] == 60
    types = {
        n["Type"]
        for n in sd.list_namespaces(Filters=[{"Name": "TYPE", "Values": ["DNS_PUBLIC"], "Condition": "EQ"}])[
            "Namespaces"
        ]
    }
    assert types == {"DNS_PUBLIC"}


def test_duplicate_namespaces_are_refused_but_a_retried_request_is_not(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    name = unique("dup")
    first = sd.create_http_namespace(Name=name, CreatorRequestId="req-" + name)["OperationId"]
    assert sd.create_http_namespace(Name=name, CreatorRequestId="req-" + name)["OperationId"] == first
    with pytest.raises(ClientError) as e:
        sd.create_http_namespace(Name=name)
    assert code(e) == "NamespaceAlreadyExists"
    assert e.value.response["NamespaceId"].startswith("ns-")


def test_a_namespace_with_services_cannot_be_deleted(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_id, _ = dns_namespace(dockyard)
    srv = dns_service(dockyard, ns_id)
    with pytest.raises(ClientError) as e:
        sd.delete_namespace(Id=ns_id)
    assert code(e) == "ResourceInUse"
    sd.register_instance(
        ServiceId=srv["Id"],
        InstanceId="i-1",
        Attributes={"AWS_INSTANCE_IPV4": "10.1.0.1", "AWS_INSTANCE_PORT": "80"},
    )
    with pytest.raises(ClientError) as e:
        sd.delete_service(Id=srv["Id"])
    assert code(e) == "ResourceInUse"
    sd.deregister_instance(ServiceId=srv["Id"], InstanceId="i-1")
    sd.delete_service(Id=srv["Id"])
    sd.delete_namespace(Id=ns_id)
    with pytest.raises(ClientError) as e:
        sd.get_service(Id=srv["Id"])
    assert code(e) == "ServiceNotFound"


def test_service_lifecycle_and_shapes(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_id, _ = dns_namespace(dockyard)
    srv = dns_service(
        dockyard,
        ns_id,
        "api",
        ("A", "AAAA"),
        ttl=10,
        RoutingPolicy="WEIGHTED",
        HealthCheckConfig={"Type": "HTTP", "ResourcePath": "/health", "FailureThreshold": 3},
        Description="the api",
    )
    assert srv["Arn"].endswith(f":service/{srv['Id']}") and srv["Id"].startswith("srv-")
    assert srv["Type"] == "DNS_HTTP" and srv["DnsConfig"]["RoutingPolicy"] == "WEIGHTED"
    assert srv["HealthCheckConfig"] == {"Type": "HTTP", "ResourcePath": "/health", "FailureThreshold": 3}
    with pytest.raises(ClientError) as e:
        dns_service(dockyard, ns_id, "api")
    assert code(e) == "ServiceAlreadyExists" and e.value.response["ServiceId"] == srv["Id"]
    sd.update_service(
        Id=srv["Id"],
        Service={
            "Description": "v2",
            "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 99}, {"Type": "AAAA", "TTL": 99}]},
            "HealthCheckConfig": {"Type": "TCP", "FailureThreshold": 2},
        },
    )
    got = sd.get_service(Id=srv["Id"])["Service"]
    assert got["Description"] == "v2" and got["DnsConfig"]["DnsRecords"][0]["TTL"] == 99
    assert got["HealthCheckConfig"] == {"Type": "TCP", "FailureThreshold": 2}
    listed = sd.list_services(Filters=[{"Name": "NAMESPACE_ID", "Values": [ns_id], "Condition": "EQ"}])
    assert [s["Id"] for s in listed["Services"]] == [srv["Id"]]
    custom = sd.create_service(
        Name="jobs", NamespaceId=ns_id, HealthCheckCustomConfig={"FailureThreshold": 1}
    )
    assert custom["Service"]["Type"] == "HTTP" and "HealthCheckCustomConfig" in custom["Service"]


def test_instances_register_update_and_deregister(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_id, ns_name = dns_namespace(dockyard)
    srv = dns_service(dockyard, ns_id)
    attrs = {"AWS_INSTANCE_IPV4": "10.2.0.1", "AWS_INSTANCE_PORT": "8080", "color": "blue"}
    op = dockyard.aws(
        "servicediscovery",
        "register-instance",
        "--service-id",
        srv["Id"],
        "--instance-id",
        "i-a",
        "--creator-request-id",
        "r-a",
        "--attributes",
        "AWS_INSTANCE_IPV4=10.2.0.1,AWS_INSTANCE_PORT=8080,color=blue",
    )
    again = sd.register_instance(
        ServiceId=srv["Id"], InstanceId="i-a", CreatorRequestId="r-a", Attributes=attrs
    )
    assert again["OperationId"] == op["OperationId"]
    with pytest.raises(ClientError) as e:
        sd.register_instance(ServiceId=srv["Id"], InstanceId="i-b", CreatorRequestId="r-a", Attributes=attrs)
    assert code(e) == "DuplicateRequest"
    got = sd.get_instance(ServiceId=srv["Id"], InstanceId="i-a")["Instance"]
    assert got["Attributes"] == attrs and got["CreatorRequestId"] == "r-a"
    sd.register_instance(ServiceId=srv["Id"], InstanceId="i-a", Attributes={**attrs, "color": "green"})
    found = sd.discover_instances(NamespaceName=ns_name, ServiceName="web")
    assert found["Instances"][0]["Attributes"]["color"] == "green"
    assert sd.get_service(Id=srv["Id"])["Service"]["InstanceCount"] == 1
    op = sd.deregister_instance(ServiceId=srv["Id"], InstanceId="i-a")["OperationId"]
    assert sd.get_operation(OperationId=op)["Operation"]["Status"] == "SUCCESS"
    with pytest.raises(ClientError) as e:
        sd.get_instance(ServiceId=srv["Id"], InstanceId="i-a")
    assert code(e) == "InstanceNotFound"
    types = [
        o["Id"]
        for o in sd.list_operations(
            Filters=[{"Name": "SERVICE_ID", "Values": [srv["Id"]], "Condition": "EQ"}]
        )["Operations"]
    ]
    assert len(types) >= 3


def test_discover_instances_filters_by_parameters_and_health(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_id, ns_name = dns_namespace(dockyard)
    srv = sd.create_service(
        Name="svc",
        NamespaceId=ns_id,
        HealthCheckCustomConfig={"FailureThreshold": 1},
        DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]},
    )["Service"]
    for n, (stage, zone) in enumerate([("prod", "a"), ("prod", "b"), ("dev", "a")]):
        sd.register_instance(
            ServiceId=srv["Id"],
            InstanceId=f"i-{n}",
            Attributes={"AWS_INSTANCE_IPV4": f"10.3.0.{n}", "stage": stage, "zone": zone},
        )

    def ids(**kw: object) -> list[str]:
        return sorted(
            i["InstanceId"]
            for i in sd.discover_instances(NamespaceName=ns_name, ServiceName="svc", **kw)["Instances"]
        )

    assert ids(QueryParameters={"stage": "prod"}) == ["i-0", "i-1"]
    assert ids(QueryParameters={"stage": "prod"}, OptionalParameters={"zone": "b"}) == ["i-1"]
    assert ids(QueryParameters={"stage": "prod"}, OptionalParameters={"zone": "z"}) == ["i-0", "i-1"]
    assert ids(QueryParameters={"stage": "qa"}) == []
    assert len(ids(MaxResults=2)) == 2
    sd.update_instance_custom_health_status(ServiceId=srv["Id"], InstanceId="i-0", Status="UNHEALTHY")
    assert ids() == ["i-1", "i-2"]
    assert ids(HealthStatus="UNHEALTHY") == ["i-0"]
    assert ids(HealthStatus="ALL") == ["i-0", "i-1", "i-2"]
    assert ids(HealthStatus="HEALTHY_OR_ELSE_ALL", QueryParameters={"stage": "prod"}) == ["i-1"]
    sd.update_instance_custom_health_status(ServiceId=srv["Id"], InstanceId="i-1", Status="UNHEALTHY")
    assert ids(HealthStatus="HEALTHY_OR_ELSE_ALL", QueryParameters={"stage": "prod"}) == ["i-0", "i-1"]
    status = sd.get_instances_health_status(ServiceId=srv["Id"])["Status"]
    assert status == {"i-0": "UNHEALTHY", "i-1": "UNHEALTHY", "i-2": "HEALTHY"}
    before = sd.discover_instances_revision(NamespaceName=ns_name, ServiceName="svc")["InstancesRevision"]
    sd.update_instance_custom_health_status(ServiceId=srv["Id"], InstanceId="i-1", Status="HEALTHY")
    after = sd.discover_instances_revision(NamespaceName=ns_name, ServiceName="svc")["InstancesRevision"]
    assert after > before


def test_discover_instances_through_the_aws_cli(dockyard: Dockyard):
    ns_id, ns_name = dns_namespace(dockyard)
    srv = dns_service(dockyard, ns_id)
    dockyard.aws(
        "servicediscovery",
        "register-instance",
        "--service-id",
        srv["Id"],
        "--instance-id",
        "x",
        "--attributes",
        "AWS_INSTANCE_IPV4=10.4.0.1,AWS_INSTANCE_PORT=80",
    )
    out = dockyard.aws(
        "servicediscovery",
        "discover-instances",
        "--namespace-name",
        ns_name,
        "--service-name",
        "web",
        "--health-status",
        "ALL",
    )
    assert out["Instances"] == [
        {
            "InstanceId": "x",
            "NamespaceName": ns_name,
            "ServiceName": "web",
            "HealthStatus": "UNKNOWN",
            "Attributes": {"AWS_INSTANCE_IPV4": "10.4.0.1", "AWS_INSTANCE_PORT": "80"},
        }
    ]


def test_custom_health_needs_a_custom_health_config(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_id, _ = dns_namespace(dockyard)
    srv = dns_service(dockyard, ns_id)
    sd.register_instance(
        ServiceId=srv["Id"],
        InstanceId="i",
        Attributes={"AWS_INSTANCE_IPV4": "10.5.0.1", "AWS_INSTANCE_PORT": "80"},
    )
    with pytest.raises(ClientError) as e:
        sd.update_instance_custom_health_status(ServiceId=srv["Id"], InstanceId="i", Status="HEALTHY")
    assert code(e) == "CustomHealthNotFound"


def test_cloud_map_limits_apply(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_id, _ = dns_namespace(dockyard)
    srv = sd.create_service(Name="lim", NamespaceId=ns_id)["Service"]
    too_many = {f"k{n}": "v" for n in range(31)}
    cases = [
        ({"InstanceId": "a", "Attributes": too_many}, "ResourceLimitExceeded"),
        ({"InstanceId": "a", "Attributes": {"k": "v" * 1025}}, None),
        ({"InstanceId": "a", "Attributes": {"k" * 256: "v"}}, None),
        ({"InstanceId": "a", "Attributes": {"AWS_INSTANCE_IPV4": "999.1.1.1"}}, "InvalidInput"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(Exception) as e:
            sd.register_instance(ServiceId=srv["Id"], **kwargs)
        if expected:  # botocore rejects the oversized ones itself, before sending
            assert code(e) == expected
    sd.register_instance(ServiceId=srv["Id"], InstanceId="ok", Attributes={f"k{n}": "v" for n in range(30)})


def test_one_thousand_instances_per_service(dockyard: Dockyard):
    from dockyard.client import Client

    key, secret = dockyard.credentials
    client = Client(dockyard.control_url, key, secret)
    ns_id, _ = dns_namespace(dockyard)
    srv = client.call("Route53AutoNaming_v20170314", "CreateService", {"Name": "big", "NamespaceId": ns_id})
    srv_id = srv["Service"]["Id"]
    for n in range(1000):
        client.call(
            "Route53AutoNaming_v20170314",
            "RegisterInstance",
            {"ServiceId": srv_id, "InstanceId": f"i-{n}", "Attributes": {"n": str(n)}},
        )
    from dockyard.client import ApiError

    with pytest.raises(ApiError) as e:
        client.call(
            "Route53AutoNaming_v20170314",
            "RegisterInstance",
            {"ServiceId": srv_id, "InstanceId": "one-too-many", "Attributes": {}},
        )
    assert e.value.code == "ResourceLimitExceeded"
    listed = client.call("Route53AutoNaming_v20170314", "ListInstances", {"ServiceId": srv_id})
    assert len(listed["Instances"]) == 100 and listed["NextToken"]


def test_bad_input_gets_aws_errors_never_a_500(dockyard: Dockyard):
    from dockyard.client import ApiError, Client

    key, secret = dockyard.credentials
    client = Client(dockyard.control_url, key, secret)
    cm = "Route53AutoNaming_v20170314"
    cases = [
        ("CreateHttpNamespace", {"Name": "has space"}, "InvalidInput"),
        ("CreateHttpNamespace", {"Name": 5}, "InvalidInput"),
        ("CreatePrivateDnsNamespace", {"Name": "-bad-.x", "Vpc": "v"}, "InvalidInput"),
        ("CreatePrivateDnsNamespace", {"Name": "ok.x"}, "InvalidInput"),
        ("GetNamespace", {"Id": "ns-doesnotexist0000"}, "NamespaceNotFound"),
        ("GetNamespace", {}, "InvalidInput"),
        ("GetService", {"Id": "srv-nope"}, "ServiceNotFound"),
        ("CreateService", {"Name": "x", "NamespaceId": "ns-nope"}, "NamespaceNotFound"),
        ("CreateService", {"Name": "x"}, "InvalidInput"),
        (
            "RegisterInstance",
            {"ServiceId": "srv-nope", "InstanceId": "a", "Attributes": {}},
            "ServiceNotFound",
        ),
        ("GetOperation", {"OperationId": "nope"}, "OperationNotFound"),
        ("DiscoverInstances", {"NamespaceName": "nope", "ServiceName": "x"}, "NamespaceNotFound"),
        ("DiscoverInstances", {"NamespaceName": None}, "InvalidInput"),
        ("ListNamespaces", {"MaxResults": 0}, "InvalidInput"),
        # a lone surrogate (sent as the JSON escape \ud800) has no UTF-8 form for the store
        ("CreateHttpNamespace", {"Name": "lone-surrogate", "Description": "\ud800"}, "InvalidInput"),
        ("GetOperation", {"OperationId": "\ud800"}, "InvalidInput"),
        ("ListNamespaces", {"NextToken": "garbage!"}, "InvalidInput"),
        ("ListNamespaces", {"Filters": [{"Name": "COLOR", "Values": ["x"]}]}, "InvalidInput"),
        (
            "ListTagsForResource",
            {"ResourceARN": "arn:aws:servicediscovery:us-east-1:0:service/srv-x"},
            "ResourceNotFoundException",
        ),
    ]
    for op, params, expected in cases:
        with pytest.raises(ApiError) as e:
            client.call(cm, op, params)
        assert (op, e.value.code) == (op, expected)
        assert e.value.status < 500


def test_tags_on_namespaces_and_services(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_id, _ = dns_namespace(dockyard)
    ns_arn = sd.get_namespace(Id=ns_id)["Namespace"]["Arn"]
    srv = dns_service(dockyard, ns_id, Tags=[{"Key": "team", "Value": "a"}])
    assert sd.list_tags_for_resource(ResourceARN=srv["Arn"])["Tags"] == [{"Key": "team", "Value": "a"}]
    sd.tag_resource(ResourceARN=ns_arn, Tags=[{"Key": "env", "Value": "dev"}])
    sd.tag_resource(ResourceARN=ns_arn, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "x", "Value": "1"}])
    tags = sd.list_tags_for_resource(ResourceARN=ns_arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "prod"), ("x", "1")]
    sd.untag_resource(ResourceARN=ns_arn, TagKeys=["x"])
    assert sd.list_tags_for_resource(ResourceARN=ns_arn)["Tags"] == [{"Key": "env", "Value": "prod"}]
    with pytest.raises(ClientError) as e:
        sd.tag_resource(ResourceARN=ns_arn, Tags=[{"Key": f"k{n}", "Value": ""} for n in range(50)])
    assert code(e) == "TooManyTagsException"
