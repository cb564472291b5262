"""ECR's pull-through cache: rules through the real ``aws ecr`` CLI and boto3, pulls through
Dockyard by docker and skopeo from a real CNCF Distribution (Debian's ``docker-registry``),
anonymous, behind htpasswd, and Dockyard's own registry (the Docker token flow) as upstreams;
and upstreams that answer garbage or hang (small aiohttp servers here).

One Dockyard of this module's own runs with a short upstream timeout (3 s) and a refresh
interval of 0 (a tag is re-checked upstream at every pull), so that a moved tag and a hanging
upstream show within seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web

from tests.support.images import build_image, busybox_image, layer_tar
from tests.support.registry import (
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    RegistryClient,
    canonical,
    descriptor,
    docker_env,
    docker_rmi,
    oras_registry,
    sha256,
    skopeo_copy,
    skopeo_ref,
)
from tests.support.registry_auth import ensure_admin
from tests.support.server import Dockyard, free_port
from tests.support.upstream import Distribution

ACCEPT = f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"
TIMEOUT = 3
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/{}"


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ptc(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[Dockyard]:
    env = {"DOCKYARD_PULL_THROUGH_TIMEOUT": str(TIMEOUT), "DOCKYARD_PULL_THROUGH_REFRESH": "0"}
    server = Dockyard(tmp_path_factory.mktemp("ptc") / "data", env=env).start()
    # aws CLI v1 fetches the URL a parameter starts with (http://...) unless told not to
    config = server.data_dir.parent / "aws-config"
    config.write_text("[default]\ncli_follow_urlparam = false\n")
    try:
        yield server
    finally:
        server.stop()


def aws(server: Dockyard, *args: str, check: bool = True) -> Any:
    env = {"AWS_CONFIG_FILE": str(server.data_dir.parent / "aws-config")}
    return server.aws("ecr", *args, env=env, check=check)


def create_rule(server: Dockyard, prefix: str, url: str, *extra: str) -> dict[str, Any]:
    return aws(
        server,
        "create-pull-through-cache-rule",
        "--ecr-repository-prefix",
        prefix,
        "--upstream-registry-url",
        url,
        *extra,
    )


def put_secret(server: Dockyard, name: str, value: str) -> str:
    proc = server.cli(
        "secrets", "put", name, "--value-stdin", "--data-dir", str(server.data_dir), input=value
    )
    assert proc.returncode == 0, proc.stderr
    return SECRET_ARN.format(name.removeprefix("ecr-pullthroughcache/"))


def prefix() -> str:
    return f"ptc-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def images() -> Iterator[tuple[str, str]]:
    """Two local images with content of their own."""
    tags = [f"dockyard-test/ptc-{uuid.uuid4().hex[:8]}:latest" for _ in range(2)]
    for tag in tags:
        build_image(
            tag, f"FROM {busybox_image()}\nCOPY marker /marker\n", {"marker": uuid.uuid4().bytes * 64}
        )
    yield tags[0], tags[1]
    docker_rmi(*tags)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Distribution]:
    up = Distribution(tmp_path / "upstream").start()
    try:
        yield up
    finally:
        up.stop()


def manifest(client: RegistryClient, repository: str, reference: str) -> Any:
    return client.get(f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT}, timeout=60)


def error_of(response: Any) -> dict[str, Any]:
    return response.json()["errors"][0]


# -- rules through the API ------------------------------------------------------------------
def test_rules_are_created_described_updated_validated_and_deleted(ptc, upstream):
    name = prefix()
    created = create_rule(ptc, name, upstream.url, "--upstream-registry", "docker-hub")
    assert created["ecrRepositoryPrefix"] == name and created["upstreamRegistryUrl"] == upstream.url
    assert created["registryId"] == "000000000000" and created["upstreamRegistry"] == "docker-hub"
    assert created["upstreamRepositoryPrefix"] == "ROOT" and "createdAt" in created
    described = aws(ptc, "describe-pull-through-cache-rules", "--ecr-repository-prefixes", name)
    [rule] = described["pullThroughCacheRules"]
    assert rule["ecrRepositoryPrefix"] == name and rule["upstreamRegistryUrl"] == upstream.url
    valid = aws(ptc, "validate-pull-through-cache-rule", "--ecr-repository-prefix", name)
    assert valid["isValid"] is True and "failure" not in valid
    updated = aws(
        ptc,
        "update-pull-through-cache-rule",
        "--ecr-repository-prefix",
        name,
        "--custom-role-arn",
        "arn:aws:iam::000000000000:role/ptc",
    )
    assert updated["customRoleArn"] == "arn:aws:iam::000000000000:role/ptc" and "updatedAt" in updated
    upstream.stop()  # Validate really asks the upstream
    invalid = aws(ptc, "validate-pull-through-cache-rule", "--ecr-repository-prefix", name)
    assert invalid["isValid"] is False and upstream.url in invalid["failure"]
    deleted = aws(ptc, "delete-pull-through-cache-rule", "--ecr-repository-prefix", name)
    assert deleted["ecrRepositoryPrefix"] == name and deleted["customRoleArn"].endswith("role/ptc")
    gone = aws(ptc, "describe-pull-through-cache-rules", "--ecr-repository-prefixes", name, check=False)
    assert gone.returncode != 0 and "PullThroughCacheRuleNotFoundException" in gone.stderr


def test_rule_requests_ecr_refuses_get_ecrs_errors(ptc):
    name = prefix()
    create_rule(ptc, name, "https://registry.invalid")

    X = "https://x.invalid"

    def create(rule_prefix: str, url: str = X, *extra: str) -> list[str]:
        return ["create-pull-through-cache-rule", "--ecr-repository-prefix", rule_prefix,
                "--upstream-registry-url", url, *extra]  # fmt: skip

    missing = SECRET_ARN.format("missing-" + uuid.uuid4().hex[:6])
    not_ecr = "arn:aws:secretsmanager:us-east-1:000000000000:secret:not-the-ecr-prefix"
    unknown = ["--ecr-repository-prefix", prefix()]
    cases = [
        (create(name), "PullThroughCacheRuleAlreadyExistsException"),
        (create("Bad_Prefix"), "InvalidParameterException"),
        (create(prefix(), "ftp://x.invalid"), "UnsupportedUpstreamRegistryException"),
        (create(prefix(), X, "--upstream-registry", "not-one"), "InvalidParameterException"),
        (create(prefix(), X, "--credential-arn", missing), "SecretNotFoundException"),
        (create(prefix(), X, "--credential-arn", not_ecr), "InvalidParameterException"),
        (["delete-pull-through-cache-rule", *unknown], "PullThroughCacheRuleNotFoundException"),
        (["update-pull-through-cache-rule", *unknown, "--custom-role-arn", "r"],
         "PullThroughCacheRuleNotFoundException"),
        (["validate-pull-through-cache-rule", *unknown], "PullThroughCacheRuleNotFoundException"),
        (["describe-pull-through-cache-rules", "--registry-id", "111111111111"], "InvalidParameterException"),
    ]  # fmt: skip
    for args, code in cases:
        proc = aws(ptc, *args, check=False)
        assert proc.returncode != 0 and code in proc.stderr, (args, proc.stderr)
    bad = put_secret(ptc, f"ecr-pullthroughcache/bad-{uuid.uuid4().hex[:6]}", "not json")
    proc = aws(
        ptc,
        "update-pull-through-cache-rule",
        "--ecr-repository-prefix",
        name,
        "--credential-arn",
        bad,
        check=False,
    )
    assert proc.returncode != 0 and "UnableToAccessSecretException" in proc.stderr


def test_rules_are_described_a_page_at_a_time(ptc):
    names = sorted(prefix() for _ in range(3))
    for name in names:
        create_rule(ptc, name, "https://registry.invalid")
    ecr = ptc.client("ecr")
    seen, token = [], None
    while True:
        page = ecr.describe_pull_through_cache_rules(maxResults=1, **({"nextToken": token} if token else {}))
        assert len(page["pullThroughCacheRules"]) <= 1
        seen += [r["ecrRepositoryPrefix"] for r in page["pullThroughCacheRules"]]
        token = page.get("nextToken")
        if not token:
            break
    assert set(names) <= set(seen) and len(seen) == len(set(seen))
    paged = ecr.get_paginator("describe_pull_through_cache_rules").paginate(PaginationConfig={"PageSize": 2})
    assert set(names) <= {r["ecrRepositoryPrefix"] for p in paged for r in p["pullThroughCacheRules"]}


# -- pulls from a real Distribution ---------------------------------------------------------
def test_docker_and_skopeo_pull_through_and_keep_serving_with_the_upstream_down(
    ptc, upstream, images, tmp_path
):
    name = prefix()
    digest = upstream.push(images[0], "team/app:v1")
    create_rule(ptc, name, upstream.url)
    ref = f"{ptc.registry}/{name}/team/app:v1"
    env = docker_env(ptc)
    try:
        pulled = subprocess.run(["docker", "pull", ref], capture_output=True, text=True, env=env, timeout=300)
        assert pulled.returncode == 0, pulled.stderr
        assert digest in pulled.stdout  # docker names the upstream's own manifest digest
        repos = aws(ptc, "describe-repositories", "--repository-names", f"{name}/team/app")["repositories"]
        assert repos[0]["repositoryName"] == f"{name}/team/app"
        images_ = aws(ptc, "describe-images", "--repository-name", f"{name}/team/app")["imageDetails"]
        assert [(i["imageDigest"], i["imageTags"]) for i in images_] == [(digest, ["v1"])]
        skopeo_copy(ptc, skopeo_ref(ptc, f"{name}/team/app@{digest}"), f"dir:{tmp_path / 'before'}")
        upstream.stop()
        docker_rmi(ref)
        again = subprocess.run(["docker", "pull", ref], capture_output=True, text=True, env=env, timeout=300)
        assert again.returncode == 0, again.stderr
        skopeo_copy(ptc, skopeo_ref(ptc, f"{name}/team/app:v1"), f"dir:{tmp_path / 'after'}")
        before = sorted(p.name for p in (tmp_path / "before").iterdir())
        assert before == sorted(p.name for p in (tmp_path / "after").iterdir())
        for f in (tmp_path / "before").iterdir():
            assert f.read_bytes() == (tmp_path / "after" / f.name).read_bytes()
        never = manifest(
            RegistryClient(ptc), f"{name}/team/other", "v1"
        )  # never cached: the upstream is down
        assert never.status_code == 502 and upstream.url in error_of(never)["message"]
    finally:
        docker_rmi(ref)


def test_oras_pulls_an_artifact_through(ptc, upstream, tmp_path, monkeypatch):
    import oras.provider

    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text(f"pulled through {uuid.uuid4()}")
    pusher = oras.provider.Registry(upstream.address, insecure=True)
    pushed = pusher.push(f"{upstream.address}/docs/notes:v1", files=["notes.txt:text/plain"], quiet=True)
    assert pushed.status_code == 201
    name = prefix()
    create_rule(ptc, name, upstream.url)
    files = oras_registry(ptc, f"{name}/docs/notes").pull(
        target=f"{ptc.registry}/{name}/docs/notes:v1", outdir=str(tmp_path / "out")
    )
    assert [Path(f).read_text() for f in files] == [Path("notes.txt").read_text()]
    upstream.stop()
    again = oras_registry(ptc, f"{name}/docs/notes").pull(
        target=f"{ptc.registry}/{name}/docs/notes:v1", outdir=str(tmp_path / "again")
    )
    assert [Path(f).read_text() for f in again] == [Path("notes.txt").read_text()]


def test_a_moved_tag_is_followed_and_the_cached_copy_served_while_the_upstream_is_down(ptc, upstream, images):
    name = prefix()
    first = upstream.push(images[0], "app:v1")
    create_rule(ptc, name, upstream.url)
    client = RegistryClient(ptc)
    r = manifest(client, f"{name}/app", "v1")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == first
    second = upstream.push(images[1], "app:v1")
    assert second != first
    r = manifest(client, f"{name}/app", "v1")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == second
    upstream.stop()
    r = manifest(client, f"{name}/app", "v1")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == second
    r = manifest(client, f"{name}/app", first)  # the older image stays cached by digest
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == first
    digests = {
        i["imageDigest"]
        for i in aws(ptc, "describe-images", "--repository-name", f"{name}/app")["imageDetails"]
    }
    assert digests == {first, second}


def test_an_index_is_cached_with_only_the_children_that_are_pulled(ptc, upstream, tmp_path):
    children = {}
    for arch in ("amd64", "arm64"):
        config = json.dumps(
            {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        )
        layer = layer_tar({f"{arch}.txt": os.urandom(2048)})
        body = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config.encode()),
                "layers": [descriptor(OCI_LAYER, layer)],
            }
        )
        upstream.push_blob("multi", config.encode())
        upstream.push_blob("multi", layer)
        children[arch] = upstream.push_manifest("multi", sha256(body), body, OCI_MANIFEST)
        children[arch + "-body"] = body
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    **descriptor(OCI_MANIFEST, children[a + "-body"]),
                    "platform": {"architecture": a, "os": "linux"},
                }
                for a in ("amd64", "arm64")
            ],
        }
    )
    index_digest = upstream.push_manifest("multi", "v1", index, OCI_INDEX)
    name = prefix()
    create_rule(ptc, name, upstream.url)
    skopeo_copy(
        ptc, skopeo_ref(ptc, f"{name}/multi:v1"), f"dir:{tmp_path / 'out'}", "--override-arch", "amd64"
    )
    stored = aws(ptc, "describe-images", "--repository-name", f"{name}/multi")["imageDetails"]
    assert {i["imageDigest"] for i in stored} == {index_digest, children["amd64"]}
    upstream.stop()
    client = RegistryClient(ptc)
    assert manifest(client, f"{name}/multi", children["amd64"]).status_code == 200
    r = client.get(f"/v2/{name}/multi/manifests/v1", headers={"Accept": OCI_INDEX})
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == index_digest
    missing = manifest(client, f"{name}/multi", children["arm64"])  # never pulled, upstream down
    assert missing.status_code == 502 and error_of(missing)["code"] == "MANIFEST_UNKNOWN"


def test_an_htpasswd_upstream_is_reached_with_credentials_from_the_secret_store(ptc, images, tmp_path):
    up = Distribution(tmp_path / "auth-upstream", user="puller", password=uuid.uuid4().hex).start()
    try:
        digest = up.push(images[0], "private/app:v1")
        anonymous, with_creds = prefix(), prefix()
        create_rule(ptc, anonymous, up.url)
        client = RegistryClient(ptc)
        refused = manifest(client, f"{anonymous}/private/app", "v1")
        assert refused.status_code == 502 and up.url in error_of(refused)["message"]
        assert "credentials" in error_of(refused)["message"]
        bad = aws(ptc, "validate-pull-through-cache-rule", "--ecr-repository-prefix", anonymous)
        assert bad["isValid"] is False
        secret = json.dumps({"username": up.user, "accessToken": up.password})
        arn = put_secret(ptc, f"ecr-pullthroughcache/{with_creds}", secret)
        assert create_rule(ptc, with_creds, up.url, "--credential-arn", arn)["credentialArn"] == arn
        assert aws(ptc, "validate-pull-through-cache-rule", "--ecr-repository-prefix", with_creds)["isValid"]
        skopeo_copy(ptc, skopeo_ref(ptc, f"{with_creds}/private/app:v1"), f"dir:{tmp_path / 'out'}")
        assert (tmp_path / "out" / "manifest.json").exists()
        r = manifest(client, f"{with_creds}/private/app", "v1")
        assert r.headers["Docker-Content-Digest"] == digest
    finally:
        up.stop()


def test_dockyards_own_registry_is_an_upstream_through_the_docker_token_flow(ptc, dockyard, images, tmp_path):
    repo = f"ptc-source/{uuid.uuid4().hex[:8]}"
    skopeo_copy(dockyard, f"docker-daemon:{images[1]}", skopeo_ref(dockyard, f"{repo}:v1"))
    user, password = ensure_admin(dockyard)
    name = prefix()
    arn = put_secret(
        ptc, f"ecr-pullthroughcache/{name}", json.dumps({"username": user, "accessToken": password})
    )
    create_rule(ptc, name, dockyard.registry_url, "--credential-arn", arn)
    assert aws(ptc, "validate-pull-through-cache-rule", "--ecr-repository-prefix", name)["isValid"]
    skopeo_copy(ptc, skopeo_ref(ptc, f"{name}/{repo}:v1"), f"dir:{tmp_path / 'out'}")
    upstream = RegistryClient(dockyard).get(f"/v2/{repo}/manifests/v1", headers={"Accept": ACCEPT})
    cached = manifest(RegistryClient(ptc), f"{name}/{repo}", "v1")
    assert cached.headers["Docker-Content-Digest"] == upstream.headers["Docker-Content-Digest"]
    assert cached.content == upstream.content


# -- bad upstreams ------------------------------------------------------------------------------
class BadUpstream:
    """An aiohttp server in a thread of its own whose answers depend on the repository asked:
    ``badjson``, ``wrongdigest`` (manifests), ``badblob`` (a layer whose bytes hash otherwise),
    ``shortblob`` (fewer bytes than its Content-Length), ``hang`` (never answers), ``stall``
    (a blob that stops halfway), ``slow`` (a blob sent slowly, each fetch counted)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.big = os.urandom(1 << 20)
        self.images: dict[str, tuple[bytes, bytes, bytes]] = {}  # repo -> manifest, config, layer
        self.blobs = {sha256(self.big): self.big}
        self.counts: dict[str, int] = {}
        self.hanging = False  # repository "flaky" hangs too while set
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/v2/", self._base)
        app.router.add_route("*", "/v2/{repo}/manifests/{ref}", self._manifest)
        app.router.add_route("*", "/v2/{repo}/blobs/{digest}", self._blob)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner

    def image(self, repo: str) -> tuple[bytes, bytes, bytes]:
        """The manifest, config and layer of ``repo``: content of its own (blobs are stored
        once by digest, so a blob another repository fetched would not be fetched again)."""
        if repo not in self.images:
            config = json.dumps(
                {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}, "repo": repo}
            ).encode()
            layer = layer_tar({"hello": os.urandom(4096)})
            body = canonical(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor(OCI_CONFIG, config),
                    "layers": [descriptor(OCI_LAYER, layer)],
                }
            )
            self.blobs.update({sha256(config): config, sha256(layer): layer})
            self.images[repo] = (body, config, layer)
        return self.images[repo]

    async def _base(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _manifest(self, request: web.Request) -> web.StreamResponse:
        repo = request.match_info["repo"]
        body = self.image(repo)[0]
        headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": sha256(body)}
        if repo == "hang" or (repo == "flaky" and self.hanging):
            await asyncio.sleep(3600)
        if repo == "badjson":
            return web.Response(body=b'{"schemaVersion": 2, "mediaType": ', content_type=OCI_MANIFEST)
        if repo == "wrongdigest":
            headers["Docker-Content-Digest"] = "sha256:" + "0" * 64
        return web.Response(body=body, headers=headers)

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        repo, digest = request.match_info["repo"], request.match_info["digest"]
        self.counts[f"{repo}@{digest}"] = self.counts.get(f"{repo}@{digest}", 0) + 1
        data = self.blobs.get(digest)
        if data is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN", "message": "no"}]}, status=404)
        if repo == "badblob" and data is self.image(repo)[2]:
            data = bytes(len(data))  # the right length, the wrong bytes
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(data) + (100 if repo == "shortblob" else 0)
        await response.prepare(request)
        if repo in ("shortblob", "stall"):
            await response.write(data[: len(data) // 2])
            if repo == "stall":
                await asyncio.sleep(3600)
            assert request.transport is not None
            request.transport.close()
            return response
        for start in range(0, len(data), 1 << 17):
            await response.write(data[start : start + (1 << 17)])
            if repo == "slow":
                await asyncio.sleep(0.25)
        await response.write_eof()
        return response

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def bad(ptc) -> Iterator[tuple[BadUpstream, str]]:
    server = BadUpstream()
    name = prefix()
    create_rule(ptc, name, server.url)
    try:
        yield server, name
    finally:
        server.close()


def assert_nothing_stored(ptc: Dockyard, repository: str) -> None:
    found = aws(ptc, "describe-images", "--repository-name", repository, check=False)
    if found.returncode == 0:
        assert json.loads(found.stdout)["imageDetails"] == []
    else:
        assert "RepositoryNotFoundException" in found.stderr


@pytest.mark.parametrize(
    ("repo", "status", "words"),
    [
        ("badjson", 502, "invalid manifest"),
        ("wrongdigest", 502, "with digest"),
        ("badblob", 502, "wrong content"),
        ("shortblob", 502, "blob"),
        ("hang", 504, f"within {TIMEOUT}s"),
        ("stall", 504, "stalled"),
    ],
)
def test_a_bad_upstream_gets_the_client_a_clear_error_and_stores_nothing(ptc, bad, repo, status, words):
    server, name = bad
    r = manifest(RegistryClient(ptc), f"{name}/{repo}", "v1")
    assert r.status_code == status, r.text
    err = error_of(r)
    assert err["code"] == "MANIFEST_UNKNOWN" and server.url in err["message"] and words in err["message"], err
    assert_nothing_stored(ptc, f"{name}/{repo}")
    layer = server.image(repo)[2]
    blob = RegistryClient(ptc).get(f"/v2/{name}/{repo}/blobs/{sha256(layer)}", timeout=60)
    if repo in ("badblob", "shortblob", "stall"):
        assert blob.status_code == status and error_of(blob)["code"] == "BLOB_UNKNOWN"
        assert server.url in error_of(blob)["message"]
    else:
        assert blob.status_code == 200 and blob.content == layer


def test_a_cached_tag_is_served_when_the_upstream_hangs(ptc, bad):
    server, name = bad
    client = RegistryClient(ptc)
    first = manifest(client, f"{name}/flaky", "v1")
    assert first.status_code == 200
    server.hanging = True
    try:
        again = manifest(client, f"{name}/flaky", "v1")  # after the 3 s timeout, from the cache
    finally:
        server.hanging = False
    assert again.status_code == 200 and again.content == first.content


def test_concurrent_pulls_of_one_blob_fetch_it_from_upstream_once(ptc, bad):
    server, name = bad
    digest = sha256(server.big)
    token = RegistryClient(ptc).token(f"{name}/slow")  # one token: the pulls start together

    def pull(_: int) -> str:
        r = requests.get(
            f"{ptc.registry_url}/v2/{name}/slow/blobs/{digest}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return hashlib.sha256(r.content).hexdigest()

    with ThreadPoolExecutor(6) as pool:
        got = set(pool.map(pull, range(6)))
    assert got == {digest.removeprefix("sha256:")}
    assert server.counts[f"slow@{digest}"] == 1
    pull(0)  # served from the cache now
    assert server.counts[f"slow@{digest}"] == 1
