"""ECS account settings: PutAccountSetting, PutAccountSettingDefault, DeleteAccountSetting and
ListAccountSettings.

A setting is kept per principal (an IAM user or role ARN) or as the account's default (the
root user's, ``principal = ""`` in the store); the effective value for a principal is its own,
else the account's default, else ECS's (:data:`AWS_DEFAULTS`, ``type: aws_managed``). The caller
is the principal when ``principalArn`` is absent (an administrator key is the root user).

What Dockyard does with them (docs/runner-services.md, "Account settings"):

* ``serviceLongArnFormat``, ``taskLongArnFormat``, ``containerInstanceLongArnFormat``: Dockyard
  always writes ECS's long ARN format, so ``enabled`` is the only value it accepts;
* ``containerInsights``: the account default is the ``containerInsights`` cluster setting of a
  CreateCluster that gives no ``settings``, as in ECS;
* ``guardDutyActivate`` is read-only, as in ECS;
* the others (``awsvpcTrunking``, ``dualStackIPv6``, ``tagResourceAuthorization``,
  ``defaultLogDriverMode`` and the Fargate ones) are kept and answered with their values, and
  change nothing: Dockyard has no ENI limits, IPv6 task addresses or Fargate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dockyard.aws.paging import page
from dockyard.aws.protocol import ECS, Call
from dockyard.config import Config
from dockyard.iam.authorize import caller
from dockyard.store import Migration, Store
from runner import data
from runner.errors import InvalidParameterException

__all__ = ["AWS_DEFAULTS", "MIGRATIONS", "VALUES", "effective", "install", "root_arn"]

MIGRATIONS = [
    Migration(
        "account_settings",
        1,
        """
        CREATE TABLE account_settings (
            name TEXT NOT NULL, principal TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (name, principal));
        """,
    ),
]

LONG_ARNS = ("serviceLongArnFormat", "taskLongArnFormat", "containerInstanceLongArnFormat")

# ECS's value when nobody set one (type aws_managed), in ECS's order of SettingName.
AWS_DEFAULTS: Mapping[str, str] = {
    "serviceLongArnFormat": "enabled",
    "taskLongArnFormat": "enabled",
    "containerInstanceLongArnFormat": "enabled",
    "awsvpcTrunking": "disabled",
    "containerInsights": "disabled",
    "dualStackIPv6": "disabled",
    "fargateFIPSMode": "disabled",
    "tagResourceAuthorization": "on",
    "fargateTaskRetirementWaitPeriod": "7",
    "guardDutyActivate": "off",
    "defaultLogDriverMode": "non-blocking",
    "fargateEventWindows": "disabled",
}

# The values each setting accepts.
VALUES: Mapping[str, tuple[str, ...]] = {
    **{n: ("enabled",) for n in LONG_ARNS},
    "awsvpcTrunking": ("enabled", "disabled"),
    "containerInsights": ("enabled", "disabled", "enhanced"),
    "dualStackIPv6": ("enabled", "disabled"),
    "fargateFIPSMode": ("enabled", "disabled"),
    "tagResourceAuthorization": ("on", "off"),
    "fargateTaskRetirementWaitPeriod": ("0", "7", "14"),
    "guardDutyActivate": (),
    "defaultLogDriverMode": ("blocking", "non-blocking"),
    "fargateEventWindows": ("enabled", "disabled"),
}

_PRINCIPAL = re.compile(r"^arn:aws:iam::(\d{12}):(root|user/[\w+=,.@/-]{1,512}|role/[\w+=,.@/-]{1,512})$")


def root_arn(config: Config) -> str:
    return f"arn:aws:iam::{config.account_id}:root"


def _name(value: Any) -> str:
    if not isinstance(value, str) or value not in AWS_DEFAULTS:
        raise InvalidParameterException(
            f"name must be one of {', '.join(AWS_DEFAULTS)}; got {value!r}."
        )
    return value


def _value(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidParameterException("value is required.")
    allowed = VALUES[name]
    if not allowed:
        raise InvalidParameterException(f"The {name} setting is read-only.")
    if value not in allowed:
        if name in LONG_ARNS and value == "disabled":
            raise InvalidParameterException(
                f"Dockyard always uses the long ARN format; {name} can only be enabled."
            )
        raise InvalidParameterException(f"The value of {name} must be one of {', '.join(allowed)}.")
    return value


def _principal(config: Config, call: Call, given: Any) -> str:
    """The principal a call is about, as stored: ``""`` for the root user (the account's
    default), else the user or role ARN."""
    if given is None:
        state = caller(call)
        arn = state[0].arn if state is not None else root_arn(config)
    elif not isinstance(given, str) or not (m := _PRINCIPAL.match(given)):
        raise InvalidParameterException(
            "principalArn must be the ARN of an IAM user, an IAM role or the root user."
        )
    elif m.group(1) != config.account_id:
        raise InvalidParameterException("principalArn must name a principal of this account.")
    else:
        arn = given
    if ":assumed-role/" in arn:  # a role session's settings are its role's
        account, rest = arn.split(":assumed-role/", 1)
        arn = f"{account.replace(':sts:', ':iam:')}:role/{rest.split('/', 1)[0]}"
    return "" if arn == root_arn(config) else arn


def _shape(config: Config, name: str, value: str, principal: str, kind: str = "user") -> dict[str, str]:
    return {"name": name, "value": value, "principalArn": principal or root_arn(config), "type": kind}


def effective(stored: Mapping[tuple[str, str], str], name: str, principal: str) -> tuple[str, str, str]:
    """(value, the principal it is set for ("" = the account's default), type) of ``name`` for
    ``principal`` (pure): its own setting, else the account's default, else ECS's."""
    if (name, principal) in stored:
        return stored[(name, principal)], principal, "user"
    if (name, "") in stored:
        return stored[(name, "")], "", "user"
    return AWS_DEFAULTS[name], "", "aws_managed"


async def put(
    store: Store, config: Config, call: Call, params: dict[str, Any], default: bool = False
) -> dict[str, Any]:
    name = _name(params.get("name"))
    value = _value(name, params.get("value"))
    principal = "" if default else _principal(config, call, params.get("principalArn"))
    if name == "fargateFIPSMode" and not default:
        raise InvalidParameterException("fargateFIPSMode can only be set with PutAccountSettingDefault.")
    async with store.transaction() as tx:
        data.put_account_setting(tx, name, principal, value)
    return {"setting": _shape(config, name, value, principal)}


async def delete(store: Store, config: Config, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    name = _name(params.get("name"))
    principal = _principal(config, call, params.get("principalArn"))
    async with store.transaction() as tx:
        value = data.delete_account_setting(tx, name, principal)
    if value is None:
        raise InvalidParameterException(
            f"No {name} setting is set for {principal or root_arn(config)}."
        )
    return {"setting": _shape(config, name, value, principal)}


async def list_(store: Store, config: Config, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """ListAccountSettings: the principal's own settings, or with ``effectiveSettings`` the
    value in force for every setting (filtered by ``name`` and ``value``); at most 10 a page."""
    name = _name(params["name"]) if params.get("name") is not None else None
    value = params.get("value")
    if value is not None and name is None:
        raise InvalidParameterException("value can only be given with name.")
    principal = _principal(config, call, params.get("principalArn"))
    stored = data.account_settings(store)
    settings = []
    for n in [name] if name else list(AWS_DEFAULTS):
        if params.get("effectiveSettings"):
            v, owner, kind = effective(stored, n, principal)
        elif (n, principal) in stored:
            v, owner, kind = stored[(n, principal)], principal, "user"
        else:
            continue
        if value is None or v == value:
            settings.append(_shape(config, n, v, owner, kind))
    chunk, token = page(settings, params, InvalidParameterException, default=10, maximum=10)
    out: dict[str, Any] = {"settings": chunk}
    if token:
        out["nextToken"] = token
    return out


def install(platform: Any) -> None:
    """Register the four operations (they need the call: its caller is the principal)."""
    store, config = platform.store, platform.config

    async def put_setting(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await put(store, config, call, params)

    async def put_default(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await put(store, config, call, params, default=True)

    async def delete_setting(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await delete(store, config, call, params)

    async def list_settings(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await list_(store, config, call, params)

    platform.ops.add(ECS, "PutAccountSetting", put_setting)
    platform.ops.add(ECS, "PutAccountSettingDefault", put_default)
    platform.ops.add(ECS, "DeleteAccountSetting", delete_setting)
    platform.ops.add(ECS, "ListAccountSettings", list_settings, readonly=True)
