"""The docker CLI against registry auth: login, push inside and outside a grant, anonymous pull."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.images import build_image, busybox_image
from tests.support.registry import docker_rmi
from tests.support.registry_auth import allow_anonymous_pull, create_user


@pytest.fixture
def image() -> Iterator[str]:
    """A local two-layer image with content of its own (so no other test has pushed it)."""
    tag = f"dockyard-test/auth-{uuid.uuid4().hex[:8]}:latest"
    build_image(tag, f"FROM {busybox_image()}\nCOPY marker /marker\n", {"marker": uuid.uuid4().bytes * 64})
    yield tag
    docker_rmi(tag)


def test_a_logged_in_user_pushes_and_pulls_inside_the_grant_and_is_denied_outside(dockyard, docker, image):
    name = f"team{uuid.uuid4().hex[:6]}"
    create_user(dockyard, name, "s3cret-" + name, f"{name}/=pull,push")
    login = docker.login(dockyard.registry, name, "s3cret-" + name)
    assert login.returncode == 0, login.stderr
    mine, other = f"{dockyard.registry}/{name}/app:v1", f"{dockyard.registry}/other{name}/app:v1"
    try:
        for ref in (mine, other):
            assert docker.run("tag", image, ref).returncode == 0
        pushed = docker.run("push", mine)
        assert pushed.returncode == 0, pushed.stderr
        refused = docker.run("push", other)
        assert refused.returncode != 0
        assert "denied" in refused.stderr.lower() or "unauthorized" in refused.stderr.lower()
        docker_rmi(mine)
        pulled = docker.run("pull", mine)
        assert pulled.returncode == 0, pulled.stderr
        inspect = docker.run("image", "inspect", "--format", "{{.Id}}", mine, image)
        ids = inspect.stdout.split()
        assert len(ids) == 2 and ids[0] == ids[1]
    finally:
        docker_rmi(mine, other)


def test_after_logout_pull_works_only_where_anonymous_pull_is_allowed(dockyard, docker, image):
    name = f"pub{uuid.uuid4().hex[:6]}"
    create_user(dockyard, name, "pw-" + name, f"{name}/=pull,push", f"priv{name}/=pull,push")
    public, private = f"{dockyard.registry}/{name}/app:v1", f"{dockyard.registry}/priv{name}/app:v1"
    try:
        assert docker.login(dockyard.registry, name, "pw-" + name).returncode == 0
        for ref in (public, private):
            assert docker.run("tag", image, ref).returncode == 0
            pushed = docker.run("push", ref)
            assert pushed.returncode == 0, pushed.stderr
        allow_anonymous_pull(dockyard, f"{name}/")
        assert docker.logout(dockyard.registry).returncode == 0
        assert dockyard.registry not in (docker.config / "config.json").read_text()
        docker_rmi(public, private)
        anonymous = docker.run("pull", public)
        assert anonymous.returncode == 0, anonymous.stderr
        refused = docker.run("pull", private)
        assert refused.returncode != 0
        assert "denied" in refused.stderr.lower() or "unauthorized" in refused.stderr.lower()
        push_anonymously = docker.run("push", public)
        assert push_anonymously.returncode != 0
    finally:
        docker_rmi(public, private)
