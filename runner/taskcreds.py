"""Task roles: the container credentials endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI``).

A task whose definition has a ``taskRoleArn`` (``arn:aws:iam::<account>:role/NAME``, a role
made with ``dockyard roles create``) gets two variables in every container:

* ``AWS_CONTAINER_CREDENTIALS_FULL_URI``:
  ``http://169.254.170.2:<port>/v1/tasks/<task id>/credentials`` (see below);
* ``AWS_CONTAINER_AUTHORIZATION_TOKEN``: HMAC-SHA256(session key, ``task|<task id>``), hex.

Every AWS SDK reads them: a ``GET`` of the URI with ``Authorization: <token>`` answers
``{"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"}``, fresh temporary
credentials (:mod:`dockyard.iam.sessions`, valid ``task_role_seconds``) under the role's
policy. The endpoint refuses a wrong token (403), a task that is unknown or stopped, and a
role that does not exist (404).

The endpoint listens on ``task_credentials_host`` (default ``172.17.0.1``, the address of the
local Docker Engine's default bridge, which the containers of this host reach) at
``task_credentials_port`` (default 0: a free port chosen at start). If that address cannot be
bound (no such bridge), the endpoint is off and a warning says so; tasks then get no
variables. The SDKs accept plain HTTP only to a loopback address, ``169.254.170.2`` or
``169.254.170.23`` (as on ECS), so at start :mod:`runner.credsnat` routes
``169.254.170.2:<port>`` to the endpoint with a DNAT rule of its own (as ECS's agent does) and
the URI is ``http://169.254.170.2:<port>/...``; without root, ``iptables`` or a bridge address
it stays ``http://<task_credentials_host>:<port>/...`` (``curl``/``wget`` work, SDKs refuse it)
and a warning says so. The full URI, not ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI``: a relative
one means port 80 (one endpoint per host), and the token goes with the full URI in every SDK.
Tasks on remote hosts (``dockyard agent``) reach it only if that address routes to the control
plane.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from dockyard.aws.errors import AwsError
from dockyard.config import Config
from dockyard.iam import records, sessions
from dockyard.store import Store
from runner import credsnat, data, protection, taskshapes
from runner.errors import InvalidParameterException, ResourceNotFoundException

__all__ = ["TaskCredentials"]

log = logging.getLogger(__name__)
ROUTE = "/v1/tasks/{task}/credentials"
AGENT = "/api/{task}/{token}"  # ECS_AGENT_URI: the task's id and token in the path, as ECS's is unguessable
PROTECTION = AGENT + "/task-protection/v1/state"


class TaskCredentials:
    """The endpoint and what a task's containers are told about it."""

    def __init__(self, store: Store, config: Config, key: bytes) -> None:
        self.store = store
        self.config = config
        self.key = key
        self.base = ""  # http://host:port once listening

    def token(self, task_id: str) -> str:
        return hmac.new(self.key, f"task|{task_id}".encode(), hashlib.sha256).hexdigest()

    def environment(self, task_id: str) -> dict[str, str]:
        """The variables of a task with a role (none while the endpoint is off)."""
        if not self.base:
            return {}
        return {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.base + ROUTE.format(task=task_id),
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.token(task_id),
        }

    def agent_environment(self, task_id: str) -> dict[str, str]:
        """``ECS_AGENT_URI`` of every task (none while the endpoint is off): the task
        scale-in protection endpoint lives under it (``/task-protection/v1/state``)."""
        if not self.base:
            return {}
        return {"ECS_AGENT_URI": self.base + AGENT.format(task=task_id, token=self.token(task_id))}

    async def protection(self, request: web.Request) -> web.Response:
        """``GET``/``PUT $ECS_AGENT_URI/task-protection/v1/state`` as the ECS agent answers it:
        ``{"protection": {"ProtectionEnabled", "ExpirationDate", "TaskArn"}}``, or
        ``{"error": {"Code", "Message", "Arn"}}``."""
        task_id = request.match_info["task"]
        if not hmac.compare_digest(request.match_info["token"].encode(), self.token(task_id).encode()):
            return _agent_error(403, "AccessDeniedException", "The path is not this task's.", "")
        task = data.task(self.store, task_id)
        arn = taskshapes.task_arn(self.config, task.cluster, task_id) if task is not None else ""
        try:
            if request.method == "PUT":
                try:
                    body = await request.json()
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    raise InvalidParameterException("The body must be a JSON object with ProtectionEnabled.")
                shown = await protection.protect(self.store, self.config, task_id,
                                                 body.get("ProtectionEnabled"), body.get("ExpiresInMinutes"))
            else:
                if task is None:
                    raise ResourceNotFoundException("The task does not exist.")
                shown = protection.state(self.config, task, time.time())
        except AwsError as e:
            return _agent_error(400 if e.status < 500 else e.status, e.code, e.message, arn)
        out: dict[str, Any] = {"ProtectionEnabled": shown["protectionEnabled"], "TaskArn": shown["taskArn"]}
        if "expirationDate" in shown:
            when = datetime.datetime.fromtimestamp(shown["expirationDate"], datetime.UTC)
            out["ExpirationDate"] = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return web.json_response({"protection": out})

    async def handle(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task"]
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), self.token(task_id).encode()):
            return _error(403, "AccessDenied", "The authorization token is not this task's.")
        task = data.task(self.store, task_id)
        if task is None or task.last_status == "STOPPED":
            return _error(404, "NotFound", "No such running task.")
        arn = str(task.definition.get("taskRoleArn") or "")
        name = records.role_name(arn, self.config.account_id)
        if name is None or records.get_role(self.store, name) is None:
            why = f"The task has no role, or its role does not exist: {arn or 'none'}."
            return _error(404, "NotFound", why)
        task_arn = taskshapes.task_arn(self.config, task.cluster, task_id)
        creds = sessions.mint(self.key, name, task_arn, self.config.task_role_seconds)
        return web.json_response({
            "RoleArn": arn,
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "Token": creds.token,
            "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(creds.expires_at)),
        })

    async def serve(self, platform: Any) -> AsyncIterator[None]:
        """A platform context: listen while the platform runs."""
        app = web.Application()
        app.router.add_get(ROUTE, self.handle)
        app.router.add_get(PROTECTION, self.protection)
        app.router.add_put(PROTECTION, self.protection)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, port = self.config.task_credentials_host, self.config.task_credentials_port
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        except OSError as e:
            log.warning("task credentials endpoint off: cannot listen on %s:%s (%s)", host, port, e.strerror)
            bound = 0
        routed = False
        if bound:
            why = await credsnat.install(host, bound)
            routed = not why
            self.base = credsnat.public_base(bound) if routed else f"http://{host}:{bound}"
            if why:
                log.warning("task credentials at http://%s:%s, which AWS SDKs refuse over plain HTTP: cannot "
                            "route %s to it (%s)", host, bound, credsnat.LINK_LOCAL, why)
        try:
            yield
        finally:
            self.base = ""
            if routed:
                await credsnat.remove(bound)
            await runner.cleanup()


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


def _agent_error(status: int, code: str, message: str, arn: str) -> web.Response:
    return web.json_response({"error": {"Arn": arn, "Code": code, "Message": message}}, status=status)
