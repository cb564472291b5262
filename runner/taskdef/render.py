"""Rendering the model back to ECS JSON, and what DescribeTaskDefinition adds to it
(see :mod:`runner.taskdef`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from runner.taskdef.model import (
    FARGATE_SIZES,
    TaskDefinition,
)


# -- rendering --------------------------------------------------------------------------------
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _render(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        out: dict[str, Any] = {}
        for f in fields(value):
            v = getattr(value, f.name)
            if f.metadata.get("skip") or v is None:
                continue
            if f.name == "extra":
                out.update(v)
                continue
            if isinstance(v, tuple) and not v and not f.metadata.get("keep_empty"):
                continue
            key = f.metadata.get("aws") or _camel(f.name)
            out[key] = str(v) if f.metadata.get("string") else _render(v)
        return out
    if isinstance(value, tuple):
        return [_render(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _render(v) for k, v in value.items()}
    return value


def render(td: TaskDefinition) -> dict[str, Any]:
    """ECS's ``TaskDefinition`` JSON of the definition itself (no ARN, revision or status)."""
    return _render(td)


def requires_attributes(td: TaskDefinition) -> list[dict[str, str]]:
    """The capabilities a host needs for this definition, named as ECS names them."""
    need: list[str] = []
    if td.network_mode == "awsvpc":
        need += ["ecs.capability.task-eni", "com.amazonaws.ecs.capability.docker-remote-api.1.18"]
    if td.cpu is not None or td.memory is not None:
        need.append("com.amazonaws.ecs.capability.docker-remote-api.1.18")
    for c in td.containers:
        if c.health_check:
            need += ["ecs.capability.container-health-check",
                     "com.amazonaws.ecs.capability.docker-remote-api.1.24"]
        if c.depends_on:
            need.append("ecs.capability.container-ordering")
        if c.secrets:
            need += ["ecs.capability.secrets.asm.environment-variables",
                     "ecs.capability.execution-role-ecr-pull"]
        if c.docker_labels:
            need.append("com.amazonaws.ecs.capability.docker-remote-api.1.18")
        if c.memory_reservation is not None:
            need.append("com.amazonaws.ecs.capability.docker-remote-api.1.21")
        if c.log_configuration:
            need.append(f"com.amazonaws.ecs.capability.logging-driver.{c.log_configuration.log_driver}")
        if c.stop_timeout is not None or c.start_timeout is not None:
            need.append("ecs.capability.container-ordering")
        if c.environment_files:
            need.append("ecs.capability.env-files.s3")
    if any(v.docker for v in td.volumes):
        need += ["ecs.capability.docker-plugin.local", "com.amazonaws.ecs.capability.docker-remote-api.1.25"]
    return [{"name": n} for n in dict.fromkeys(need)]


def compatibilities(td: TaskDefinition) -> list[str]:
    """The launch types this definition can run on: EC2 always, FARGATE when it fits Fargate."""
    out = ["EC2"]
    fargate = (
        td.network_mode == "awsvpc"
        and td.cpu in FARGATE_SIZES
        and td.memory in FARGATE_SIZES.get(td.cpu or 0, ())
        and not any(v.docker or (v.host and v.host.source_path) for v in td.volumes)
    )
    if fargate:
        out.append("FARGATE")
    return out


def image_candidates(image: str, registry: str | None) -> list[str]:
    """Where to pull ``image`` from, in order.

    An image naming a registry host (its first path component holds a ``.`` or ``:``, or is
    ``localhost``) is pulled from there only. An unqualified one (``my-app-image:latest``,
    ``team/app``) is looked up in Dockyard's own registry (``registry``, ``host:port``) first,
    then as Docker would resolve it (Docker Hub or a configured mirror).
    """
    first = image.split("/", 1)[0]
    qualified = "/" in image and ("." in first or ":" in first or first == "localhost")
    if qualified or not registry:
        return [image]
    return [f"{registry}/{image}", image]

