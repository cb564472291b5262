"""Dockyard: a self-hosted OCI registry, ECS and Cloud Map (the ``dockyard`` command line).

User errors print one line (``dockyard: ...``) on stderr and exit 1; never a traceback (a
server that does not answer is one: the line names the URL tried and how to point elsewhere).
A wrong flag prints the usage of the subcommand it was given to and exits 2. Listing commands
take ``--json``; commands that write to the data dir name it (:meth:`CliContext.done`). Output
cut short by its reader (``dockyard events | head``) ends quietly, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from dockyard import __version__
from dockyard import config as configmod
from dockyard.client import ApiError, Unreachable
from dockyard.lock import DataDirInUse

__all__ = ["main"]


class UserError(Exception):
    """Printed as one line; exit status 1."""


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """Plain fixed-width table, header upper-cased."""
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def emit(args: argparse.Namespace, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
    else:
        print(table(rows, columns))


def _config(args: argparse.Namespace) -> configmod.Config:
    overrides = {
        k: getattr(args, k, None)
        for k in (
            "host", "data_dir", "registry_port", "control_port", "xds_port", "dns_port",
            "log_level", "tls_cert", "tls_key", "control_workers", "state_url",
        )
    }
    if getattr(args, "tls_self_signed", False):
        overrides["tls_self_signed"] = True
    return configmod.load(overrides, getattr(args, "config", None))


def cmd_up(args: argparse.Namespace) -> int:
    from dockyard import platform

    asyncio.run(platform.run(_config(args)))
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"dockyard {__version__}")
    return 0


def _store(args: argparse.Namespace) -> Any:
    from dockyard.platform import open_store

    return open_store(_config(args))


def _done(args: argparse.Namespace, message: str) -> None:
    """Print ``message`` about a change written to the data dir, and which data dir it was."""
    print(f"{message} (data dir {_config(args).data_dir})")


def _key_policy(args: argparse.Namespace) -> str | None:
    """The policy document ``keys create`` was given (``--policy FILE``, ``-`` for stdin, or
    ``--read-only``), validated; None for an administrator key."""
    from dockyard.iam import policy

    if args.read_only and args.policy:
        raise UserError("give --policy or --read-only, not both")
    if args.read_only:
        return policy.parse(policy.READ_ONLY).document
    if not args.policy:
        return None
    try:
        text = sys.stdin.read() if args.policy == "-" else open(args.policy, encoding="utf-8").read()
    except UnicodeDecodeError:
        raise UserError(f"policy {args.policy}: not UTF-8 text") from None
    try:
        return policy.parse(text).document
    except policy.PolicyError as e:
        raise UserError(f"policy {args.policy}: {e}") from None


def cmd_keys_create(args: argparse.Namespace) -> int:
    from dockyard import keys

    document = _key_policy(args)
    store = _store(args)
    key = asyncio.run(keys.create(store, args.name, document))
    if args.json:
        print(json.dumps({"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret, "Name": key.name}))
    else:
        print(f"access key id:     {key.access_key_id}\nsecret access key: {key.secret}")
        print(f"data dir:          {_config(args).data_dir}")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from dockyard import keys
    from dockyard.iam.records import key_policy

    store = _store(args)
    rows = [
        {
            "access_key_id": k.access_key_id,
            "name": k.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(k.created_at)),
            "access": "policy" if key_policy(store, k.access_key_id) is not None else "admin",
        }
        for k in keys.list_keys(store)
    ]
    emit(args, rows, ["access_key_id", "name", "access", "created"])
    return 0


def cmd_keys_delete(args: argparse.Namespace) -> int:
    from dockyard import keys

    if not asyncio.run(keys.delete(_store(args), args.access_key_id)):
        raise UserError(f"no access key {args.access_key_id}")
    _done(args, f"deleted {args.access_key_id}")
    return 0


def cmd_roles_create(args: argparse.Namespace) -> int:
    from dockyard.iam import records

    document = _key_policy(args)
    if document is None:
        raise UserError("a role needs --policy FILE or --read-only")
    cfg = _config(args)
    try:
        role = asyncio.run(records.create_role(_store(args), args.name, document))
    except ValueError as e:
        raise UserError(str(e)) from None
    arn = records.role_arn(cfg.account_id, role.name)
    if args.json:
        print(json.dumps({"RoleName": role.name, "Arn": arn}))
    else:
        _done(args, f"created role {arn}")
    return 0


def cmd_roles_list(args: argparse.Namespace) -> int:
    from dockyard.iam import records

    account = _config(args).account_id
    rows = [
        {
            "name": r.name,
            "arn": records.role_arn(account, r.name),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.created_at)),
        }
        for r in records.list_roles(_store(args))
    ]
    emit(args, rows, ["name", "arn", "created"])
    return 0


def cmd_roles_delete(args: argparse.Namespace) -> int:
    from dockyard.iam import records

    if not asyncio.run(records.delete_role(_store(args), args.name)):
        raise UserError(f"no role {args.name}")
    _done(args, f"deleted role {args.name}")
    return 0


def _data_dir_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="state and blobs (default ~/.local/share/dockyard)")
    p.add_argument("--config", help="TOML config file (default <data-dir>/dockyard.toml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dockyard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run every part in one process, in the foreground")
    _data_dir_args(up)
    up.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--registry-port", type=int, help="OCI registry port (default 5000)")
    up.add_argument("--control-workers", type=int,
                    help="processes serving the control port; extra ones answer read-only calls (default 1)")
    up.add_argument("--control-port", type=int, help="control API port (default 8080)")
    up.add_argument("--xds-port", type=int, help="xDS gRPC port (default 18000)")
    up.add_argument("--dns-port", type=int, help="DNS port, UDP and TCP (default 8053)")
    up.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    up.add_argument("--tls-cert", help="PEM certificate for the registry port")
    up.add_argument("--tls-key", help="PEM private key for the registry port")
    up.add_argument("--tls-self-signed", action="store_true", help="make a self-signed certificate")
    up.add_argument("--state-url", metavar="URL",
                    help="postgresql://user:pass@host:port/db for the state (default: SQLite)")
    up.set_defaults(func=cmd_up)

    sub.add_parser("version", help="print the version").set_defaults(func=cmd_version)

    keys = sub.add_parser("keys", help="access keys for the control API").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    p = keys.add_parser("create", help="create an access key (prints the secret once)")
    _data_dir_args(p)
    p.add_argument("--name", default="key")
    p.add_argument("--policy", metavar="FILE",
                   help="IAM JSON policy limiting the key (- for stdin; default: an administrator)")
    p.add_argument("--read-only", action="store_true", help="a key for Describe*, List*, Get*, Discover*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_create)
    p = keys.add_parser("list", help="list access keys")
    _data_dir_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_list)
    p = keys.add_parser("delete", help="delete an access key")
    _data_dir_args(p)
    p.add_argument("access_key_id")
    p.set_defaults(func=cmd_keys_delete)

    roles = sub.add_parser("roles", help="IAM roles that tasks act as (taskRoleArn)").add_subparsers(
        dest="roles_command", required=True, metavar="ACTION"
    )
    p = roles.add_parser("create", help="create a role: arn:aws:iam::<account>:role/NAME")
    _data_dir_args(p)
    p.add_argument("name")
    p.add_argument("--policy", metavar="FILE", help="IAM JSON policy of the role (- for stdin)")
    p.add_argument("--read-only", action="store_true", help="Describe*, List*, Get*, Discover*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_roles_create)
    p = roles.add_parser("list", help="list roles")
    _data_dir_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_roles_list)
    p = roles.add_parser("delete", help="delete a role (its tasks' credentials stop working)")
    _data_dir_args(p)
    p.add_argument("name")
    p.set_defaults(func=cmd_roles_delete)

    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub, CliContext)
    return parser


# Each part's ``cli`` module adds its own commands (``registry gc``, ``discovery ...``,
# ``ps`` ...) through ``add_commands(subparsers, CliContext)``.
COMMAND_MODULES = ["registry.cli", "discovery.cli", "runner.cli", "mesh.cli", "mesh.status_cli",
                   "mesh.telemetry.traces_cli", "mesh.stats_cli", "edge.cli"]


class CliContext:
    """What a part's command needs: config, store, API client, output helpers."""

    UserError = UserError
    table = staticmethod(table)
    emit = staticmethod(emit)
    data_dir_args = staticmethod(_data_dir_args)

    @staticmethod
    def config(args: argparse.Namespace) -> configmod.Config:
        return _config(args)

    @staticmethod
    def store(args: argparse.Namespace) -> Any:
        return _store(args)

    @staticmethod
    def done(args: argparse.Namespace, message: str) -> None:
        """Print what a command changed in the data dir, naming the data dir."""
        _done(args, message)

    @staticmethod
    def client(args: argparse.Namespace) -> Any:
        from dockyard.client import from_config

        return from_config(_config(args), getattr(args, "endpoint_url", None))

    @staticmethod
    def client_args(p: argparse.ArgumentParser) -> None:
        """Flags of a command that talks to a running server."""
        _data_dir_args(p)
        p.add_argument("--endpoint-url", help="control API URL (default from config)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _mark_leaf_parsers(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand's namespace its own parser (``_parser``), innermost wins."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.set_defaults(_parser=child)
                _mark_leaf_parsers(child)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; unknown arguments are reported with the usage of the subcommand that
    was given them (argparse alone shows the top-level usage)."""
    _mark_leaf_parsers(parser)
    args, extras = parser.parse_known_args(argv)
    if extras:
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush of
    what is still buffered does not raise again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except Unreachable as e:
        print(f"dockyard: {e}", file=sys.stderr)
        return 1
    except ApiError as e:
        print(f"dockyard: {e.code}: {e.message}", file=sys.stderr)
        return 1
    except (UserError, configmod.ConfigError, DataDirInUse) as e:
        print(f"dockyard: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"dockyard: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
