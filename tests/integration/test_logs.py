"""CloudWatch Logs: ``awslogs`` containers' output read with the real ``aws logs`` CLI and
``dockyard logs --follow`` (busybox built locally, the real Docker Engine)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_ecs_tasks import own_cluster, register, run, until_status, wait_for
from tests.support.images import busybox_image
from tests.support.server import BIN, Dockyard

LINES = [
    "starting web",
    '{"status": 500, "path": "/a"}',
    '{"status": 200, "path": "/b"}',
    "ERROR disk full",
    "done",
]


@pytest.fixture(scope="module")
def cluster(dockyard: Dockyard) -> Iterator[str]:
    with own_cluster(dockyard, "logs") as name:
        yield name


@pytest.fixture(scope="module")
def ecs(dockyard: Dockyard) -> Any:
    return dockyard.client("ecs")


def _awslogs(group: str, prefix: str, create: bool = True) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": group,
            "awslogs-stream-prefix": prefix,
            "awslogs-region": "us-east-1",
            "awslogs-create-group": "true" if create else "false",
        },
    }


def _error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


@pytest.fixture(scope="module")
def task(dockyard: Dockyard, ecs: Any, cluster: str) -> tuple[str, str, str]:
    """A running task whose container printed :data:`LINES`: (group, task id, arn)."""
    group = f"/ecs/logs-{uuid.uuid4().hex[:8]}"
    script = "; ".join(f"echo '{line}'" for line in LINES) + "; exec sleep 600"
    td = register(
        ecs,
        "logs-web",
        {
            "name": "web",
            "image": busybox_image(),
            "memory": 16,
            "command": ["sh", "-c", script],
            "stopTimeout": 1,
            "logConfiguration": _awslogs(group, "svc"),
        },
    )
    arn = run(ecs, cluster, td)
    until_status(ecs, cluster, arn, "RUNNING")
    return group, arn.rsplit("/", 1)[1], arn


def _messages(dockyard: Dockyard, group: str, stream: str) -> list[str]:
    out = dockyard.aws(
        "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream, "--start-from-head"
    )
    return [e["message"] for e in out["events"]]


def test_an_awslogs_container_is_read_with_the_aws_cli_under_ecs_stream_names(
    dockyard: Dockyard, task: tuple[str, str, str]
) -> None:
    group, task_id, _ = task
    stream = f"svc/web/{task_id}"
    groups = dockyard.aws("logs", "describe-log-groups", "--log-group-name-prefix", group)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [group]
    assert groups[0]["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{group}:*"
    streams = dockyard.aws("logs", "describe-log-streams", "--log-group-name", group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [stream]
    wait_for(lambda: _messages(dockyard, group, stream) == LINES, 60, "every line in the stream")
    terms = dockyard.aws("logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "ERROR")
    assert [(e["logStreamName"], e["message"]) for e in terms["events"]] == [(stream, "ERROR disk full")]
    js = dockyard.aws(
        "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "{ $.status = 500 }"
    )
    assert [e["message"] for e in js["events"]] == [LINES[1]]
    both = dockyard.aws(
        "logs",
        "filter-log-events",
        "--log-group-name",
        group,
        "--filter-pattern",
        '{ $.status >= 200 && $.path = "/b" }',
    )
    assert [e["message"] for e in both["events"]] == [LINES[2]]
    excluded = dockyard.aws(
        "logs",
        "filter-log-events",
        "--log-group-name",
        group,
        "--filter-pattern",
        '?"disk full" ?starting -web',
    )
    assert [e["message"] for e in excluded["events"]] == ["ERROR disk full"]
    fields = dockyard.aws(
        "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "[level = ERROR, ...]"
    )
    assert [e["message"] for e in fields["events"]] == ["ERROR disk full"]
    either = dockyard.aws(
        "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "?ERROR ?done"
    )
    assert [e["message"] for e in either["events"]] == ["ERROR disk full", "done"]
    # the tail (no --start-from-head) and the tokens: a forward token with nothing new stays put
    tail = dockyard.aws(
        "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream, "--limit", "2"
    )
    assert [e["message"] for e in tail["events"]] == LINES[-2:]
    again = dockyard.aws(
        "logs",
        "get-log-events",
        "--log-group-name",
        group,
        "--log-stream-name",
        stream,
        "--next-token",
        tail["nextForwardToken"],
    )
    assert again["events"] == [] and again["nextForwardToken"] == tail["nextForwardToken"]
    back = dockyard.aws(
        "logs",
        "get-log-events",
        "--log-group-name",
        group,
        "--log-stream-name",
        stream,
        "--next-token",
        tail["nextBackwardToken"],
        "--limit",
        "3",
    )
    assert [e["message"] for e in back["events"]] == LINES[:3]


def test_dockyard_logs_follow_reads_the_same_store(
    dockyard: Dockyard, cluster: str, task: tuple[str, str, str]
) -> None:
    group, task_id, arn = task
    args = [
        "--data-dir",
        str(dockyard.data_dir),
        "--endpoint-url",
        dockyard.control_url,
        "--cluster",
        cluster,
    ]
    follow = subprocess.Popen(
        [str(BIN / "dockyard"), "logs", task_id, "--follow", "--interval", "0.2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(follow.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(lines) >= len(LINES), 30, "the task's lines")
        (cid,) = subprocess.run(
            [
                "docker",
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                f"label=dockyard.task-arn={arn}",
                "--filter",
                "label=dockyard.container-name=web",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        subprocess.run(["docker", "exec", cid, "sh", "-c", "echo later > /proc/1/fd/1"], check=True)
        wait_for(lambda: "later\n" in lines, 30, "the line written after --follow started")
        assert lines == [line + "\n" for line in LINES] + ["later\n"]  # each line once, in order
        stream = f"svc/web/{task_id}"
        assert _messages(dockyard, group, stream)[-1] == "later"
        dockyard.client("ecs").stop_task(cluster=cluster, task=arn)
        assert follow.wait(60) == 0, follow.stderr.read()
    finally:
        if follow.poll() is None:
            follow.kill()


def test_a_missing_group_without_create_group_fails_the_task_as_ecs_does(ecs: Any, cluster: str) -> None:
    td = register(
        ecs,
        "logs-nogroup",
        {
            "name": "app",
            "image": busybox_image(),
            "memory": 16,
            "command": ["true"],
            "logConfiguration": _awslogs(f"/ecs/absent-{uuid.uuid4().hex[:8]}", "x", create=False),
        },
    )
    arn = run(ecs, cluster, td)
    stopped = until_status(ecs, cluster, arn, "STOPPED")
    assert "The specified log group does not exist" in stopped["stoppedReason"], stopped["stoppedReason"]


def test_put_log_events_rules_retention_and_bad_input_get_cloudwatch_errors(dockyard: Dockyard) -> None:
    group = f"/dockyard/test-{uuid.uuid4().hex[:8]}"
    aws = dockyard.aws
    assert "ResourceNotFoundException" in _error(
        aws("logs", "describe-log-streams", "--log-group-name", group, check=False)
    )
    aws("logs", "create-log-group", "--log-group-name", group, "--tags", "team=core")
    assert "ResourceAlreadyExistsException" in _error(
        aws("logs", "create-log-group", "--log-group-name", group, check=False)
    )
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    assert aws("logs", "list-tags-for-resource", "--resource-arn", arn)["tags"] == {"team": "core"}
    aws("logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "s")
    assert "ResourceNotFoundException" in _error(
        aws("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "nope", check=False)
    )
    bad_token = aws(
        "logs",
        "get-log-events",
        "--log-group-name",
        group,
        "--log-stream-name",
        "s",
        "--next-token",
        "f/not-ours",
        check=False,
    )
    assert "InvalidParameterException" in _error(bad_token)
    now = int(time.time() * 1000)
    day = 86_400_000

    def put(events: list[tuple[int, str]], check: bool = True) -> Any:
        body = json.dumps([{"timestamp": t, "message": m} for t, m in events])
        return aws(
            "logs",
            "put-log-events",
            "--log-group-name",
            group,
            "--log-stream-name",
            "s",
            "--log-events",
            body,
            check=check,
        )

    out_of_order = put([(now, "b"), (now - 1000, "a")], check=False)
    assert "InvalidParameterException" in _error(out_of_order) and "chronological" in out_of_order.stderr
    span = put([(now - 2 * day, "a"), (now, "b")], check=False)
    assert "InvalidParameterException" in _error(span) and "24 hours" in span.stderr
    old = put([(now - 20 * day, "ancient"), (now - 20 * day + 1, "ancient too")])
    assert old["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    ahead = put([(now - 3 * day, "three days"), (now - 3 * day + 1000, "three days, later")])
    assert "rejectedLogEventsInfo" not in ahead
    assert put([(now, "now"), (now + 3 * 3_600_000, "future")])["rejectedLogEventsInfo"] == {
        "tooNewLogEventStartIndex": 1
    }
    assert "InvalidParameterException" in _error(
        aws(
            "logs",
            "filter-log-events",
            "--log-group-name",
            group,
            "--filter-pattern",
            "{ $.a = ",
            check=False,
        )
    )
    assert "InvalidParameterException" in _error(
        aws(
            "logs", "put-retention-policy", "--log-group-name", group, "--retention-in-days", "2", check=False
        )
    )

    def messages() -> list[str]:
        return [e["message"] for e in aws("logs", "filter-log-events", "--log-group-name", group)["events"]]

    assert messages() == ["three days", "three days, later", "now"]
    aws("logs", "put-retention-policy", "--log-group-name", group, "--retention-in-days", "1")
    assert (
        aws("logs", "describe-log-groups", "--log-group-name-prefix", group)["logGroups"][0][
            "retentionInDays"
        ]
        == 1
    )
    wait_for(lambda: messages() == ["now"], 30, "the retention loop to drop the event older than a day")
    aws("logs", "delete-log-group", "--log-group-name", group)
    assert "ResourceNotFoundException" in _error(
        aws("logs", "delete-log-group", "--log-group-name", group, check=False)
    )


def test_service_connect_access_logs_reach_the_log_group_of_its_log_configuration(dockyard: Dockyard) -> None:
    from tests.integration.test_ecs_service_connect import namespace
    from tests.integration.test_mesh_service_connect import app_container, create, curl_alias, running
    from tests.integration.test_mesh_service_connect import task_definition as meshed_definition

    ns = namespace(dockyard, f"logs-{uuid.uuid4().hex[:6]}.local")
    alias = f"web.{ns['Name']}"
    group = f"/ecs/sc-{uuid.uuid4().hex[:8]}"
    ecs = dockyard.client("ecs")
    with own_cluster(dockyard, "logs-sc") as cluster:
        web = meshed_definition(dockyard, "logs-sc-web", {"VERSION": "web-v1"})
        create(
            dockyard,
            cluster,
            "web",
            web,
            {
                "enabled": True,
                "namespace": ns["Name"],
                "services": [
                    {
                        "portName": "web",
                        "discoveryName": "web",
                        "clientAliases": [{"port": 80, "dnsName": alias}],
                    }
                ],
                "logConfiguration": _awslogs(group, "sc"),
                "accessLogConfiguration": {"format": "JSON", "includeQueryParameters": "DISABLED"},
            },
        )
        [web_task] = wait_for(lambda: running(ecs, cluster, "web"), 180, "web's task running")
        front = meshed_definition(dockyard, "logs-sc-front", {"VERSION": "front"})
        create(
            dockyard,
            cluster,
            "front",
            front,
            {
                "enabled": True,
                "namespace": ns["Name"],
                "logConfiguration": _awslogs(group, "fr"),
                "accessLogConfiguration": {"format": "TEXT", "includeQueryParameters": "ENABLED"},
            },
        )
        [task] = wait_for(lambda: running(ecs, cluster, "front"), 180, "front's task running")
        app = app_container(task["taskArn"])
        wait_for(lambda: curl_alias(app, f"{alias}").strip() == "web-v1", 60, f"{alias} through the sidecars")
        web_id = web_task["taskArn"].rsplit("/", 1)[1]

        def access_lines() -> list[dict[str, Any]]:
            out = dockyard.aws(
                "logs",
                "filter-log-events",
                "--log-group-name",
                group,
                "--filter-pattern",
                "{ $.response_code = 200 && $.method = GET }",
            )
            return [(e["logStreamName"], json.loads(e["message"])) for e in out["events"]]

        found = wait_for(access_lines, 60, "an access log line of web's sidecar")
        stream, line = found[0]
        assert stream.startswith("sc/ecs-service-connect-") and stream.endswith(f"/{web_id}")
        assert line["path"] == "/" and line["authority"].startswith("web.")
        # front's sidecar logs its egress requests as TEXT: space-delimited fields, the query kept
        front_id = task["taskArn"].rsplit("/", 1)[1]

        def text_lines() -> list[tuple[str, str]]:
            out = dockyard.aws(
                "logs",
                "filter-log-events",
                "--log-group-name",
                group,
                "--log-stream-name-prefix",
                "fr/",
                "--filter-pattern",
                '[time, request = "GET /*", status = 200, ...]',
            )
            return [(e["logStreamName"], e["message"]) for e in out["events"]]

        text_stream, text = wait_for(text_lines, 60, "a TEXT access log line of front's sidecar")[0]
        assert text_stream.startswith("fr/ecs-service-connect-") and text_stream.endswith(f"/{front_id}")
        assert '"GET / HTTP/1.1" 200' in text, text
        assert {
            s["logStreamName"]
            for s in dockyard.aws("logs", "describe-log-streams", "--log-group-name", group)["logStreams"]
        } == {stream, text_stream}
        sidecar = stream.split("/")[1]
        shown = dockyard.cli(
            "logs",
            web_id,
            "--container",
            sidecar,
            "--cluster",
            cluster,
            "--data-dir",
            str(dockyard.data_dir),
            "--endpoint-url",
            dockyard.control_url,
        )
        assert shown.returncode == 0, shown.stderr
        assert any(
            json.loads(x).get("response_code") == 200 for x in shown.stdout.splitlines() if x.startswith("{")
        ), shown.stdout[-2000:]


def test_groups_and_streams_page_with_tokens_and_tags_round_trip(dockyard: Dockyard) -> None:
    prefix = f"/dockyard/page-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}/{i}" for i in range(3)]
    for name in names:
        dockyard.aws("logs", "create-log-group", "--log-group-name", name)
    # the CLI follows nextToken page by page (one group a page)
    paged = dockyard.aws("logs", "describe-log-groups", "--log-group-name-prefix", prefix, "--page-size", "1")
    assert [g["logGroupName"] for g in paged["logGroups"]] == names
    for s in ("b", "a", "c"):
        dockyard.aws("logs", "create-log-stream", "--log-group-name", names[0], "--log-stream-name", s)
    streams = dockyard.aws("logs", "describe-log-streams", "--log-group-name", names[0], "--page-size", "2")
    assert [s["logStreamName"] for s in streams["logStreams"]] == ["a", "b", "c"]
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{names[0]}"
    dockyard.aws("logs", "tag-resource", "--resource-arn", arn, "--tags", "team=core,env=test")
    dockyard.aws("logs", "untag-resource", "--resource-arn", arn, "--tag-keys", "env")
    assert dockyard.aws("logs", "list-tags-for-resource", "--resource-arn", arn)["tags"] == {"team": "core"}
    bad = dockyard.aws("logs", "list-tags-for-resource", "--resource-arn", arn + "-absent", check=False)
    assert "ResourceNotFoundException" in _error(bad)
    invalid = dockyard.aws("logs", "create-log-group", "--log-group-name", "bad name!", check=False)
    assert "InvalidParameterException" in _error(invalid)
    for name in names:
        dockyard.aws("logs", "delete-log-group", "--log-group-name", name)


def test_a_read_only_key_reads_logs_but_may_not_write_them(dockyard: Dockyard) -> None:
    from tests.integration.test_iam_keys import aws_as, make_key

    viewer = make_key(dockyard, f"logs-viewer-{uuid.uuid4().hex[:6]}", "--read-only")
    group = f"/dockyard/ro-{uuid.uuid4().hex[:8]}"
    dockyard.aws("logs", "create-log-group", "--log-group-name", group)
    for args in (
        ("describe-log-groups", "--log-group-name-prefix", group),
        ("filter-log-events", "--log-group-name", group),
        ("describe-log-streams", "--log-group-name", group),
    ):
        proc = aws_as(dockyard, viewer, "logs", *args)
        assert proc.returncode == 0, proc.stderr
    denied = aws_as(dockyard, viewer, "logs", "delete-log-group", "--log-group-name", group)
    assert "AccessDeniedException" in _error(denied) and "logs:DeleteLogGroup" in denied.stderr
    dockyard.aws("logs", "delete-log-group", "--log-group-name", group)
