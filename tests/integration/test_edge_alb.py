"""The edge through the real ``aws elbv2`` / ``aws acm`` CLIs, a real Envoy and real upstreams.

One load balancer for the module: three small HTTP servers on 127.0.0.1 as targets of three
target groups, one HTTP listener whose rules route by host, path, header, method and query
string, split by weight, redirect and answer fixed responses; curl checks what Envoy does.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.pem import self_signed
from tests.support.edge import Upstream, curl, edge_port, error_code, target_group, tg_health, wait_for
from tests.support.server import Dockyard


class Alb:
    def __init__(self, dockyard: Dockyard) -> None:
        self.d = dockyard
        self.up = {n: Upstream(n) for n in ("a", "b", "c")}
        self.port = edge_port()
        lb = dockyard.aws(
            "elbv2",
            "create-load-balancer",
            "--name",
            "edge-test",
            "--type",
            "application",
            "--tags",
            "Key=team,Value=edge",
        )
        self.lb = lb["LoadBalancers"][0]["LoadBalancerArn"]
        self.tg = {}
        for name, up in self.up.items():
            self.tg[name] = target_group(dockyard, f"edge-{name}", up.port, path="/health", matcher="200-299")
            dockyard.aws(
                "elbv2",
                "register-targets",
                "--target-group-arn",
                self.tg[name],
                "--targets",
                f"Id=127.0.0.1,Port={up.port}",
            )
        fixed = json.dumps(
            [
                {
                    "Type": "fixed-response",
                    "FixedResponseConfig": {
                        "StatusCode": "404",
                        "ContentType": "text/plain",
                        "MessageBody": "no route",
                    },
                }
            ]
        )
        out = dockyard.aws(
            "elbv2",
            "create-listener",
            "--load-balancer-arn",
            self.lb,
            "--protocol",
            "HTTP",
            "--port",
            str(self.port),
            "--default-actions",
            fixed,
        )
        self.listener = out["Listeners"][0]["ListenerArn"]
        self.rules: dict[str, str] = {}
        for priority, key, conditions, actions in [
            (
                10,
                "host",
                [{"Field": "host-header", "HostHeaderConfig": {"Values": ["api.example.com"]}}],
                [{"Type": "forward", "TargetGroupArn": self.tg["a"]}],
            ),
            (
                20,
                "path",
                [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/b/*"]}}],
                [{"Type": "forward", "TargetGroupArn": self.tg["b"]}],
            ),
            (
                30,
                "header",
                [
                    {
                        "Field": "http-header",
                        "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["yes"]},
                    }
                ],
                [{"Type": "forward", "TargetGroupArn": self.tg["c"]}],
            ),
            (
                40,
                "split",
                [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/split*"]}}],
                [
                    {
                        "Type": "forward",
                        "ForwardConfig": {
                            "TargetGroups": [
                                {"TargetGroupArn": self.tg["a"], "Weight": 1},
                                {"TargetGroupArn": self.tg["b"], "Weight": 3},
                            ]
                        },
                    }
                ],
            ),
            (
                50,
                "redirect",
                [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/old"]}}],
                [
                    {
                        "Type": "redirect",
                        "RedirectConfig": {
                            "Protocol": "HTTPS",
                            "Host": "new.example.com",
                            "Port": "443",
                            "Path": "/new",
                            "StatusCode": "HTTP_301",
                        },
                    }
                ],
            ),
            (
                60,
                "method",
                [
                    {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}},
                    {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}]}},
                ],
                [{"Type": "forward", "TargetGroupArn": self.tg["b"]}],
            ),
        ]:
            out = dockyard.aws(
                "elbv2",
                "create-rule",
                "--listener-arn",
                self.listener,
                "--priority",
                str(priority),
                "--conditions",
                json.dumps(conditions),
                "--actions",
                json.dumps(actions),
            )
            self.rules[key] = out["Rules"][0]["RuleArn"]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.d.aws("elbv2", "delete-load-balancer", "--load-balancer-arn", self.lb)
        for arn in self.tg.values():
            self.d.aws("elbv2", "delete-target-group", "--target-group-arn", arn)
        for up in self.up.values():
            up.stop()


@pytest.fixture(scope="module")
def alb(dockyard: Dockyard) -> Iterator[Alb]:
    made = Alb(dockyard)
    try:
        wait_for(
            lambda: curl("-H", "Host: api.example.com", made.url + "/").stdout == "a", what="the edge Envoy"
        )
        yield made
    finally:
        made.close()


def test_describe_shapes_and_tags(dockyard: Dockyard, alb: Alb) -> None:
    lbs = dockyard.aws("elbv2", "describe-load-balancers", "--names", "edge-test")["LoadBalancers"]
    assert lbs[0]["LoadBalancerArn"] == alb.lb and lbs[0]["Type"] == "application"
    assert lbs[0]["State"] == {"Code": "active"}
    tgs = dockyard.aws("elbv2", "describe-target-groups", "--load-balancer-arn", alb.lb)["TargetGroups"]
    assert sorted(t["TargetGroupName"] for t in tgs) == ["edge-a", "edge-b", "edge-c"]
    assert all(t["LoadBalancerArns"] == [alb.lb] for t in tgs)
    assert tgs[0]["Matcher"] == {"HttpCode": "200-299"}
    rules = dockyard.aws("elbv2", "describe-rules", "--listener-arn", alb.listener)["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "30", "40", "50", "60", "default"]
    assert rules[-1]["IsDefault"] is True
    tags = dockyard.aws("elbv2", "describe-tags", "--resource-arns", alb.lb)["TagDescriptions"]
    assert tags == [{"ResourceArn": alb.lb, "Tags": [{"Key": "team", "Value": "edge"}]}]
    dockyard.aws("elbv2", "add-tags", "--resource-arns", alb.lb, "--tags", "Key=env,Value=test")
    dockyard.aws("elbv2", "remove-tags", "--resource-arns", alb.lb, "--tag-keys", "team")
    tags = dockyard.aws("elbv2", "describe-tags", "--resource-arns", alb.lb)["TagDescriptions"]
    assert tags[0]["Tags"] == [{"Key": "env", "Value": "test"}]
    attrs = dockyard.aws(
        "elbv2",
        "modify-target-group-attributes",
        "--target-group-arn",
        alb.tg["c"],
        "--attributes",
        "Key=deregistration_delay.timeout_seconds,Value=1",
    )["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "1"} in attrs


def test_routing_by_host_path_header_method_query(alb: Alb) -> None:
    assert curl("-H", "Host: API.example.com:80", alb.url + "/x").stdout == "a"
    assert curl(alb.url + "/b/anything").stdout == "b"
    assert curl("-H", "X-Canary: YES", alb.url + "/").stdout == "c"
    assert curl("-X", "POST", alb.url + "/p?v=2").stdout == "b"
    miss = curl("-X", "POST", "-w", "%{http_code}", alb.url + "/p?v=3")
    assert miss.stdout == "no route404"
    fixed = curl("-i", alb.url + "/nowhere")
    assert fixed.stdout.startswith("HTTP/1.1 404") and "content-type: text/plain" in fixed.stdout.lower()
    assert fixed.stdout.endswith("no route")


def test_redirect(alb: Alb) -> None:
    out = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", alb.url + "/old?x=1")
    assert out.stdout == "301 https://new.example.com/new?x=1"


def test_weighted_split(alb: Alb) -> None:
    counts = Counter(curl(alb.url + "/split").stdout for _ in range(200))
    assert set(counts) == {"a", "b"}, counts
    assert 25 <= counts["a"] <= 80, counts  # 1:3 of 200 is 50


def test_target_health_follows_the_upstream(dockyard: Dockyard, alb: Alb) -> None:
    c = f"127.0.0.1:{alb.up['c'].port}"
    wait_for(lambda: tg_health(dockyard, alb.tg["c"])[c]["State"] == "healthy", what="c healthy")
    dockyard.aws(
        "elbv2",
        "modify-target-group-attributes",
        "--target-group-arn",
        alb.tg["c"],
        "--attributes",
        "Key=deregistration_delay.timeout_seconds,Value=4",
    )
    alb.up["c"].stop()
    health = wait_for(
        lambda: (h := tg_health(dockyard, alb.tg["c"])[c])["State"] == "unhealthy" and h, what="c unhealthy"
    )
    assert health["Reason"] == "Target.FailedHealthChecks"
    dockyard.aws(
        "elbv2",
        "deregister-targets",
        "--target-group-arn",
        alb.tg["c"],
        "--targets",
        f"Id=127.0.0.1,Port={alb.up['c'].port}",
    )
    assert tg_health(dockyard, alb.tg["c"])[c]["State"] == "draining"
    wait_for(lambda: c not in tg_health(dockyard, alb.tg["c"]), what="drained")


def test_bad_requests_get_elbv2_errors(dockyard: Dockyard, alb: Alb) -> None:
    def fails(*args: str) -> str:
        return error_code(dockyard.aws("elbv2", *args, check=False))

    assert fails("create-load-balancer", "--name", "edge-test") == "DuplicateLoadBalancerName"
    assert fails("describe-load-balancers", "--names", "nope") == "LoadBalancerNotFound"
    assert fails("describe-target-groups", "--names", "nope") == "TargetGroupNotFound"
    assert (
        fails(
            "create-rule",
            "--listener-arn",
            alb.listener,
            "--priority",
            "10",
            "--conditions",
            "Field=path-pattern,Values=/z",
            "--actions",
            f"Type=forward,TargetGroupArn={alb.tg['a']}",
        )
        == "PriorityInUse"
    )
    six = json.dumps(
        [{"Field": "path-pattern", "PathPatternConfig": {"Values": [f"/{i}" for i in range(6)]}}]
    )
    assert (
        fails(
            "create-rule",
            "--listener-arn",
            alb.listener,
            "--priority",
            "99",
            "--conditions",
            six,
            "--actions",
            f"Type=forward,TargetGroupArn={alb.tg['a']}",
        )
        == "ValidationError"
    )
    assert (
        fails(
            "create-listener",
            "--load-balancer-arn",
            alb.lb,
            "--protocol",
            "HTTP",
            "--port",
            "7000",
            "--default-actions",
            f"Type=forward,TargetGroupArn={alb.tg['a']}",
        )
        == "InvalidConfigurationRequest"
    )
    assert (
        fails(
            "create-listener",
            "--load-balancer-arn",
            alb.lb,
            "--protocol",
            "HTTP",
            "--port",
            str(alb.port),
            "--default-actions",
            f"Type=forward,TargetGroupArn={alb.tg['a']}",
        )
        == "DuplicateListener"
    )
    assert (
        fails(
            "create-listener",
            "--load-balancer-arn",
            alb.lb,
            "--protocol",
            "HTTP",
            "--port",
            str(edge_port()),
            "--default-actions",
            "Type=forward,TargetGroupArn=arn:nope",
        )
        == "TargetGroupNotFound"
    )
    assert fails("delete-target-group", "--target-group-arn", alb.tg["a"]) == "ResourceInUse"
    assert (
        fails(
            "create-target-group",
            "--name",
            "edge-bad",
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--health-check-interval-seconds",
            "5",
            "--health-check-timeout-seconds",
            "6",
        )
        == "ValidationError"
    )
    assert fails("register-targets", "--target-group-arn", alb.tg["a"], "--targets", "Id=not-an-ip") in (
        "InvalidTarget",
    )
    assert (
        fails(
            "modify-load-balancer-attributes",
            "--load-balancer-arn",
            alb.lb,
            "--attributes",
            "Key=nope,Value=1",
        )
        == "ValidationError"
    )
    # the load balancer keeps serving
    assert curl("-H", "Host: api.example.com", alb.url + "/").stdout == "a"


def test_set_rule_priorities_and_modify_rule(dockyard: Dockyard, alb: Alb) -> None:
    out = dockyard.aws(
        "elbv2", "set-rule-priorities", "--rule-priorities", f"RuleArn={alb.rules['header']},Priority=5"
    )
    assert out["Rules"][0]["Priority"] == "5"
    code = error_code(
        dockyard.aws(
            "elbv2",
            "set-rule-priorities",
            "--rule-priorities",
            f"RuleArn={alb.rules['path']},Priority=5",
            check=False,
        )
    )
    assert code == "PriorityInUse"
    dockyard.aws(
        "elbv2",
        "modify-rule",
        "--rule-arn",
        alb.rules["path"],
        "--actions",
        json.dumps(
            [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200", "MessageBody": "moved"}}]
        ),
    )
    wait_for(lambda: curl(alb.url + "/b/x").stdout == "moved", what="the modified rule")
    dockyard.aws(
        "elbv2",
        "modify-rule",
        "--rule-arn",
        alb.rules["path"],
        "--actions",
        f"Type=forward,TargetGroupArn={alb.tg['b']}",
    )
    wait_for(lambda: curl(alb.url + "/b/x").stdout == "b", what="the rule back")


def test_https_listener_with_an_imported_certificate(dockyard: Dockyard, alb: Alb, tmp_path: Path) -> None:
    cert, key = self_signed(["localhost", "127.0.0.1"])
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    arn = dockyard.aws(
        "acm",
        "import-certificate",
        "--certificate",
        f"fileb://{tmp_path / 'cert.pem'}",
        "--private-key",
        f"fileb://{tmp_path / 'key.pem'}",
        "--tags",
        "Key=k,Value=v",
    )["CertificateArn"]
    desc = dockyard.aws("acm", "describe-certificate", "--certificate-arn", arn)["Certificate"]
    assert desc["DomainName"] == "localhost" and desc["Type"] == "IMPORTED" and desc["Status"] == "ISSUED"
    assert desc["KeyAlgorithm"] == "EC_prime256v1"
    listed = dockyard.aws("acm", "list-certificates")["CertificateSummaryList"]
    assert arn in [c["CertificateArn"] for c in listed]
    assert dockyard.aws("acm", "get-certificate", "--certificate-arn", arn)["Certificate"] == cert.decode()
    assert dockyard.aws("acm", "list-tags-for-certificate", "--certificate-arn", arn)["Tags"] == [
        {"Key": "k", "Value": "v"}
    ]
    port = edge_port()
    out = dockyard.aws(
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        alb.lb,
        "--protocol",
        "HTTPS",
        "--port",
        str(port),
        "--certificates",
        f"CertificateArn={arn}",
        "--default-actions",
        f"Type=forward,TargetGroupArn={alb.tg['a']}",
    )
    listener = out["Listeners"][0]["ListenerArn"]
    try:
        wait_for(
            lambda: curl("--cacert", str(tmp_path / "cert.pem"), f"https://localhost:{port}/").stdout == "a",
            what="HTTPS through the edge",
        )
        plain = curl("-o", "/dev/null", "-w", "%{http_code}", f"https://localhost:{port}/")
        assert plain.returncode != 0  # not trusted without --cacert
        in_use = error_code(dockyard.aws("acm", "delete-certificate", "--certificate-arn", arn, check=False))
        assert in_use == "ResourceInUseException"
        assert dockyard.aws("acm", "describe-certificate", "--certificate-arn", arn)["Certificate"][
            "InUseBy"
        ] == [listener]
    finally:
        dockyard.aws("elbv2", "delete-listener", "--listener-arn", listener)
    dockyard.aws("acm", "delete-certificate", "--certificate-arn", arn)
    gone = error_code(dockyard.aws("acm", "describe-certificate", "--certificate-arn", arn, check=False))
    assert gone == "ResourceNotFoundException"


def test_bad_certificates_get_acm_errors(dockyard: Dockyard, tmp_path: Path) -> None:
    cert, _ = self_signed(["a.example"])
    _, other_key = self_signed(["b.example"])
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "other.pem").write_bytes(other_key)
    (tmp_path / "junk.pem").write_bytes(b"not a certificate")

    def fails(cert_file: str, key_file: str) -> str:
        proc = dockyard.aws(
            "acm",
            "import-certificate",
            "--certificate",
            f"fileb://{tmp_path / cert_file}",
            "--private-key",
            f"fileb://{tmp_path / key_file}",
            check=False,
        )
        assert "does not match" in proc.stderr or "not" in proc.stderr
        return error_code(proc)

    assert fails("cert.pem", "other.pem") == "ValidationException"
    assert fails("junk.pem", "other.pem") == "ValidationException"
    assert fails("cert.pem", "junk.pem") == "ValidationException"
    code = error_code(
        dockyard.aws(
            "acm", "describe-certificate", "--certificate-arn", "arn:aws:s3:::not-a-certificate", check=False
        )
    )
    assert code == "InvalidArnException"


def test_self_signed_convenience_command(dockyard: Dockyard, alb: Alb, tmp_path: Path) -> None:
    d = ("--data-dir", str(dockyard.data_dir))
    proc = dockyard.cli(
        "certificate", "self-signed", "localhost", "--out", str(tmp_path / "c.pem"), "--json", *d
    )
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    desc = dockyard.aws("acm", "describe-certificate", "--certificate-arn", made["CertificateArn"])[
        "Certificate"
    ]
    assert desc["DomainName"] == "localhost"
    port = edge_port()
    out = dockyard.aws(
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        alb.lb,
        "--protocol",
        "HTTPS",
        "--port",
        str(port),
        "--certificates",
        f"CertificateArn={made['CertificateArn']}",
        "--default-actions",
        f"Type=forward,TargetGroupArn={alb.tg['b']}",
    )
    try:
        wait_for(
            lambda: curl("--cacert", made["CertificateFile"], f"https://localhost:{port}/").stdout == "b",
            what="HTTPS with the convenience certificate",
        )
    finally:
        dockyard.aws("elbv2", "delete-listener", "--listener-arn", out["Listeners"][0]["ListenerArn"])
    dockyard.aws("acm", "delete-certificate", "--certificate-arn", made["CertificateArn"])


def test_describe_operations_page_by_marker(dockyard: Dockyard, alb: Alb) -> None:
    elb = dockyard.client("elbv2")
    first = elb.describe_rules(ListenerArn=alb.listener, PageSize=2)
    assert len(first["Rules"]) == 2 and first["NextMarker"]
    second = elb.describe_rules(ListenerArn=alb.listener, PageSize=2, Marker=first["NextMarker"])
    assert {r["RuleArn"] for r in first["Rules"]}.isdisjoint(r["RuleArn"] for r in second["Rules"])
    paginator = elb.get_paginator("describe_rules")
    pages = list(paginator.paginate(ListenerArn=alb.listener, PaginationConfig={"PageSize": 3}))
    rules = [r for p in pages for r in p["Rules"]]
    assert len(pages) == 3 and len(rules) == len(alb.rules) + 1 and rules[-1]["IsDefault"]
    assert "NextMarker" not in pages[-1]
    paginator = elb.get_paginator("describe_target_groups")
    groups = [g for p in paginator.paginate(PaginationConfig={"PageSize": 1}) for g in p["TargetGroups"]]
    assert set(alb.tg.values()) <= {g["TargetGroupArn"] for g in groups}
    # the aws CLI: ``--page-size`` is ELBv2's PageSize (a manual page), ``--marker`` the next one
    out = dockyard.aws("elbv2", "describe-target-groups", "--page-size", "1")
    assert [g["TargetGroupArn"] for g in out["TargetGroups"]] == [groups[0]["TargetGroupArn"]]
    out = dockyard.aws("elbv2", "describe-target-groups", "--page-size", "1", "--marker", out["NextMarker"])
    assert [g["TargetGroupArn"] for g in out["TargetGroups"]] == [groups[1]["TargetGroupArn"]]
    bad = dockyard.aws("elbv2", "describe-rules", "--listener-arn", alb.listener, "--marker", "garbage",
                       check=False)
    assert error_code(bad) == "ValidationError"
    bad = dockyard.aws("elbv2", "describe-load-balancers", "--page-size", "401", "--no-paginate", check=False)
    assert error_code(bad) == "ValidationError"
