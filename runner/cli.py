"""Command-line commands of this part (added to ``dockyard`` by ``dockyard.cli``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any


def add_commands(sub: Any, ctx: Any) -> None:
    """Add this part's subcommands to the ``dockyard`` parser."""
    _add_secrets(sub, ctx)
    from runner.services_cli import add_services

    add_services(sub, ctx)
    from runner.deployments_cli import add_deployments

    add_deployments(sub, ctx)
    from runner.canary_cli import add_canary

    add_canary(sub, ctx)
    from runner.tasks_cli import add_commands as add_task_commands

    add_task_commands(sub, ctx)
    from runner.exec_cli import add_command as add_exec

    add_exec(sub, ctx)
    from runner.eventbridge.cli import add_rules

    add_rules(sub, ctx)
    from runner.autoscaling.cli import add_scaling

    add_scaling(sub, ctx)


# -- dockyard secrets -------------------------------------------------------------------------
def _add_secrets(sub: Any, ctx: Any) -> None:
    secrets = sub.add_parser(
        "secrets", help="Dockyard's secret store (task definitions reference dockyard:secret:NAME)"
    ).add_subparsers(dest="secrets_command", required=True, metavar="ACTION")

    def put(args: argparse.Namespace) -> int:
        from runner import secrets as store_secrets

        if not args.value_stdin:
            raise ctx.UserError("give the value on standard input with --value-stdin")
        value = sys.stdin.read()
        if value.endswith("\n") and not args.keep_newline:
            value = value[:-1]
        try:
            new = asyncio.run(store_secrets.put(ctx.store(args), args.name, value))
        except ValueError as e:
            raise ctx.UserError(str(e)) from None
        verb = "created" if new else "updated"
        ctx.done(args, f"{verb} secret {args.name} (reference: dockyard:secret:{args.name})")
        return 0

    def list_(args: argparse.Namespace) -> int:
        from runner import secrets as store_secrets

        def when(t: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

        rows = [
            {"name": r.name, "created": when(r.created_at), "updated": when(r.updated_at)}
            for r in store_secrets.list_names(ctx.store(args))
        ]
        ctx.emit(args, rows, ["name", "created", "updated"])
        return 0

    def delete(args: argparse.Namespace) -> int:
        from runner import secrets as store_secrets

        if not asyncio.run(store_secrets.delete(ctx.store(args), args.name)):
            raise ctx.UserError(f"no secret {args.name}")
        ctx.done(args, f"deleted secret {args.name}")
        return 0

    p = secrets.add_parser("put", help="create or replace a secret, value read from standard input")
    ctx.data_dir_args(p)
    p.add_argument("name")
    p.add_argument("--value-stdin", action="store_true", help="read the value from standard input")
    p.add_argument("--keep-newline", action="store_true", help="keep a trailing newline of the value")
    p.set_defaults(func=put)
    p = secrets.add_parser("list", help="list secret names (never values)")
    ctx.data_dir_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_)
    p = secrets.add_parser("delete", help="delete a secret")
    ctx.data_dir_args(p)
    p.add_argument("name")
    p.set_defaults(func=delete)
