"""runner.connect: a meshed task's Service Connect state survives the store's JSON; the pure
rules (validation with ECS's errors, defaults, ingress ports, alias addresses, endpoints)."""

from dataclasses import dataclass

import pytest

from runner import connect
from runner.connect import Alias, ConnectEntry, TaskConnect, TaskIngress, connect_from_json, connect_json
from runner.data import Binding, ContainerState, Task, TaskNetwork
from runner.errors import InvalidParameterException


def test_no_connect_is_the_empty_string():
    assert connect_json(None) == ""
    assert connect_from_json("") is None


def test_round_trip():
    c = TaskConnect(
        "shop.local", (TaskIngress("web", 15100, 8080, "http"),), {"db.shop.local": "127.255.0.2"}
    )
    assert connect_from_json(connect_json(c)) == c


# -- the pure rules of runner.connect ----------------------------------------------------------


@dataclass(frozen=True)
class Ns:
    id: str = "ns-1"
    arn: str = "arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-1"
    name: str = "shop.local"


def defn(mode: str = "awsvpc", *mappings: dict) -> dict:
    mappings = mappings or (
        {"containerPort": 8080, "name": "web", "appProtocol": "http"},
        {"containerPort": 9090, "name": "admin"},
    )
    return {
        "family": "web",
        "revision": 3,
        "networkMode": mode,
        "containerDefinitions": [{"name": "app", "portMappings": list(mappings)}],
    }


def check(raw: dict, definition: dict | None = None, others=()) -> dict:
    return connect.check_configuration(raw, definition or defn(), Ns(), others)[0]


def test_defaults_as_ecs_documents_them():
    config, name = connect.check_configuration(
        {
            "enabled": True,
            "namespace": "shop.local",
            "services": [{"portName": "web", "clientAliases": [{"port": 80}]}],
        },
        defn(),
        Ns(),
    )
    assert name == "shop.local"
    assert config == {
        "enabled": True,
        "namespace": Ns().arn,
        "services": [
            {
                "portName": "web",
                "discoveryName": "web",
                "clientAliases": [{"port": 80, "dnsName": "web.shop.local"}],
            }
        ],
    }


def test_a_client_only_configuration_and_a_disabled_one():
    assert check({"enabled": True}) == {"enabled": True, "namespace": Ns().arn, "services": []}
    assert connect.check_configuration({"enabled": False}, defn(), None) == ({"enabled": False}, "")


@pytest.mark.parametrize(
    "raw",
    [
        {"enabled": "yes"},
        {"enabled": True, "services": [{"portName": "nope"}]},
        {"enabled": True, "services": [{}]},
        {"enabled": True, "services": [{"portName": "web", "discoveryName": "-bad"}]},
        {"enabled": True, "services": [{"portName": "web", "clientAliases": [{"port": 0}]}]},
        {"enabled": True, "services": [{"portName": "web", "clientAliases": [{"port": 65536}]}]},
        {"enabled": True, "services": [{"portName": "web", "clientAliases": [{"port": 1}, {"port": 2}]}]},
        {"enabled": True, "services": [{"portName": "web", "clientAliases": [{"port": 1, "dnsName": "-x"}]}]},
        {"enabled": True, "services": [{"portName": "web", "ingressPortOverride": 15000}]},
        {"enabled": True, "services": [{"portName": "web", "ingressPortOverride": 9090}]},
        {"enabled": True, "services": [{"portName": "web", "timeout": {"idleTimeoutSeconds": -1}}]},
        {"enabled": True, "services": [{"portName": "web", "timeout": {"idleTimeoutSeconds": 2**31}}]},
        {"enabled": True, "services": [{"portName": "admin", "timeout": {"perRequestTimeoutSeconds": 1}}]},
        {"enabled": True, "services": [{"portName": "web"}, {"portName": "web"}]},  # one discoveryName twice
        {
            "enabled": True,
            "services": [
                {"portName": "web", "ingressPortOverride": 16000},
                {"portName": "admin", "ingressPortOverride": 16000},
            ],
        },
        {"enabled": True, "services": [{"portName": "web", "tls": {}}]},
        {"enabled": True, "logConfiguration": {}},
    ],
)
def test_bad_configurations_are_invalid_parameters(raw):
    with pytest.raises(InvalidParameterException):
        check(raw)


def test_enabled_needs_a_namespace_and_awsvpc_or_bridge():
    with pytest.raises(InvalidParameterException, match="no namespace"):
        connect.check_configuration({"enabled": True}, defn(), None)
    with pytest.raises(InvalidParameterException, match="network modes"):
        check({"enabled": True}, defn("host"))


def test_names_and_aliases_are_unique_in_the_namespace():
    db = ConnectEntry("shop.local", "db", "db", aliases=(Alias("db.local", 5432),))
    with pytest.raises(InvalidParameterException, match="discoveryName 'db'"):
        check({"enabled": True, "services": [{"portName": "web", "discoveryName": "db"}]}, others=[db])
    with pytest.raises(InvalidParameterException, match=r"DB\.local:5432"):
        check(
            {
                "enabled": True,
                "services": [{"portName": "web", "clientAliases": [{"port": 5432, "dnsName": "DB.local"}]}],
            },
            others=[db],
        )
    # Another port of the same name, or the same names in another namespace, are fine.
    check(
        {
            "enabled": True,
            "services": [{"portName": "web", "clientAliases": [{"port": 80, "dnsName": "db.local"}]}],
        },
        others=[db, ConnectEntry("other.local", "web", "web")],
    )


def test_ingress_ports_skip_reserved_task_and_override_ports():
    d = defn(
        "bridge",
        {"containerPort": 15100, "hostPort": 15101, "name": "web"},
        {"containerPort": 80, "name": "b"},
        {"containerPort": 81, "name": "c"},
    )
    services = [{"portName": "web"}, {"portName": "b", "ingressPortOverride": 15102}, {"portName": "c"}]
    assert connect.ingress_ports(d, services) == [15103, 15102, 15104]
    assert connect.ingress_ports(defn(), [{"portName": "web"}]) == [connect.INGRESS_BASE]


def test_alias_addresses_are_distinct_and_never_end_in_0_or_255():
    names = [f"s{i:05d}.local" for i in range(600)]
    got = connect.alias_addresses(reversed(names))
    assert got["s00000.local"] == "127.255.0.1" and got["s00253.local"] == "127.255.0.254"
    assert got["s00254.local"] == "127.255.1.1"
    assert len(set(got.values())) == 600
    assert not any(a.endswith((".0", ".255")) for a in got.values())
    assert connect.alias_addresses(["b", "a", "A"]) in (
        {"a": "127.255.0.1", "b": "127.255.0.2"},
        {"A": "127.255.0.1", "b": "127.255.0.2"},
    )
    assert connect.alias_addresses([]) == {}


def _deployment(config: dict, definition: dict | None = None) -> dict:
    return {
        "serviceConnectConfiguration": config,
        "connectNamespace": "shop.local",
        "definition": definition or defn(),
    }


def test_a_task_gets_its_ingress_and_every_alias_of_the_namespace():
    config = check(
        {
            "enabled": True,
            "services": [
                {
                    "portName": "web",
                    "clientAliases": [{"port": 80}],
                    "timeout": {"perRequestTimeoutSeconds": 2},
                }
            ],
        }
    )
    dep = _deployment(config)
    [entry] = connect.entries(dep)
    assert entry == ConnectEntry(
        "shop.local", "web", "web", "http", (Alias("web.shop.local", 80),), per_request_timeout=2
    )
    db = ConnectEntry("shop.local", "db", "db", aliases=(Alias("db.local", 5432),))
    elsewhere = ConnectEntry("other.local", "x", "x", aliases=(Alias("x.other", 1),))
    tc = connect.task_connect(dep, [entry, db, elsewhere])
    assert tc == connect.TaskConnect(
        "shop.local",
        (connect.TaskIngress("web", 15100, 8080, "http", discovery_name="web"),),
        {"db.local": "127.255.0.1", "web.shop.local": "127.255.0.2"},
    )
    assert connect.task_connect({"serviceConnectConfiguration": {"enabled": False}}, [db]) is None
    client = connect.task_connect(_deployment(check({"enabled": True})), [db])
    assert (
        client is not None and client.ingress == () and client.alias_addresses == {"db.local": "127.255.0.1"}
    )


def test_namespace_entries_take_the_newest_deployment_of_a_discovery_name():
    new = _deployment(
        check({"enabled": True, "services": [{"portName": "web", "clientAliases": [{"port": 81}]}]})
    )
    old = _deployment(
        check({"enabled": True, "services": [{"portName": "web", "clientAliases": [{"port": 80}]}]})
    )
    [e] = connect.namespace_entries([[new, old]], "shop.local")
    assert e.aliases == (Alias("web.shop.local", 81),)
    assert connect.namespace_entries([[new, old]], "other.local") == []


def _task(mode: str, **kw) -> Task:
    tc = connect.TaskConnect("shop.local", (connect.TaskIngress("web", 15100, 8080, "http"),))
    return Task(
        "t1",
        "c",
        "i",
        "arn",
        "web",
        {"networkMode": mode},
        "EC2",
        "RUNNING",
        "RUNNING",
        0.0,
        connect=tc,
        **kw,
    )


def test_ingress_endpoint_in_each_network_mode():
    assert connect.ingress_endpoint(_task("awsvpc", network=TaskNetwork(ip="10.0.0.5")), "web") == (
        "10.0.0.5",
        15100,
    )
    assert connect.ingress_endpoint(_task("awsvpc"), "web") is None  # no address yet
    assert connect.ingress_endpoint(_task("host"), "web") == ("", 15100)
    assert connect.ingress_endpoint(_task("bridge"), "web") is None  # the ingress port not published yet
    published = (ContainerState("~pause", bindings=(Binding(15100, 32768),)),)
    assert connect.ingress_endpoint(_task("bridge", containers=published), "web") == ("", 32768)
    assert connect.ingress_endpoint(_task("awsvpc", network=TaskNetwork(ip="10.0.0.5")), "nope") is None


def test_a_task_keeps_service_connects_log_configuration_and_access_log_settings():
    lc = {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/sc", "awslogs-stream-prefix": "sc"}}
    config = check({"enabled": True, "logConfiguration": lc,
                    "accessLogConfiguration": {"format": "JSON", "includeQueryParameters": "ENABLED"}})
    tc = connect.task_connect(_deployment(config), [])
    assert tc is not None and tc.log_configuration == lc
    assert (tc.access_log, tc.access_log_query) == ("JSON", True)
    assert connect_from_json(connect_json(tc)) == tc
    # ECS: access logs need a logConfiguration to go to
    alone = connect.task_connect(_deployment(check({"enabled": True, "accessLogConfiguration": {
        "format": "TEXT"}})), [])
    assert alone is not None and alone.access_log == "" and alone.log_configuration is None


# -- services[].tls: mTLS issued by Dockyard's mesh CA (docs/mtls.md) ---------------------------

CA = "arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/dockyard-mesh"


def tls_config(tls: object) -> dict:
    return {"enabled": True, "namespace": "shop.local",
            "services": [{"portName": "web", "clientAliases": [{"port": 80}], "tls": tls}]}


def test_tls_naming_dockyards_mesh_ca_is_echoed_and_turns_mtls_on_for_the_service_and_its_tasks():
    tls = {"issuerCertificateAuthority": {"awsPcaAuthorityArn": CA}, "roleArn": "arn:aws:iam::0:role/x"}
    config = check(tls_config(tls))
    assert config["services"][0]["tls"] == tls
    deployment = {"serviceConnectConfiguration": config, connect.HIDDEN_NAMESPACE: "shop.local",
                  "definition": defn()}
    [entry] = connect.entries(deployment)
    assert entry.tls
    task = connect.task_connect(deployment, [entry])
    assert [i.tls for i in task.ingress] == [True]
    assert connect_from_json(connect_json(task)) == task
    assert connect.mesh_ca_arn("us-east-1", "000000000000") == CA


@pytest.mark.parametrize("tls, message", [
    ("yes", "tls must be an object"),
    ({}, "awsPcaAuthorityArn is required"),
    ({"issuerCertificateAuthority": {"awsPcaAuthorityArn": CA.replace("dockyard-mesh", "other")}},
     "is not a certificate authority of Dockyard: its mesh CA is " + CA),
    ({"issuerCertificateAuthority": {"awsPcaAuthorityArn": CA}, "kmsKey": 5}, "kmsKey must be a string"),
])
def test_tls_with_another_issuer_or_a_bad_shape_is_refused(tls, message):
    with pytest.raises(InvalidParameterException, match=message):
        check(tls_config(tls))


def test_a_service_without_tls_stays_plain():
    config = check(tls_config(None))
    assert "tls" not in config["services"][0]
    deployment = {"serviceConnectConfiguration": config, connect.HIDDEN_NAMESPACE: "shop.local",
                  "definition": defn()}
    assert not connect.entries(deployment)[0].tls
    assert [i.tls for i in connect.task_connect(deployment, []).ingress] == [False]
