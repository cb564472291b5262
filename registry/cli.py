"""Command-line commands of the registry part (added to ``dockyard`` by ``dockyard.cli``).

* ``dockyard users create NAME --password-stdin [--admin] [--grant PREFIX=pull,push,delete ...]``
* ``dockyard users list [--json]``, ``dockyard users delete NAME``
* ``dockyard users grant NAME PREFIX ACTIONS``, ``dockyard users revoke NAME PREFIX``
* ``dockyard users passwd NAME --password-stdin``
* ``dockyard registry anonymous-pull allow|deny PREFIX``, ``dockyard registry anonymous-pull list``
* ``dockyard registry rm-repo NAME [--force]``: removes a repository from the catalog; one
  that still holds manifests is refused unless ``--force``. Its blobs go at the next GC
  (``Metadata.delete_repository``)
* ``dockyard vulndb import PATH...``, ``dockyard vulndb status [--json]`` (``registry.scan.cli``)
* ``dockyard registry gc [--dry-run] [--grace SECONDS] [--json]`` (asks the running server, which
  knows its upload sessions in flight, to collect garbage: see ``registry.gc``)

These write the state store directly (like ``dockyard keys``), so they work whether or not the
server runs; the server applies a change to the next token it issues.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from typing import Any

__all__ = ["add_commands"]


def _password(args: argparse.Namespace, ctx: Any) -> str:
    """The password from stdin (first line, like ``docker login --password-stdin``) or a
    prompt on a terminal."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise ctx.UserError("passwords do not match")
    else:
        raise ctx.UserError("give the password on stdin with --password-stdin")
    if not password:
        raise ctx.UserError("the password must not be empty")
    return password


def _parse_grant(text: str, ctx: Any) -> tuple[str, tuple[str, ...]]:
    from registry import users

    prefix, sep, actions = text.rpartition("=")
    if not sep:
        raise ctx.UserError(f"--grant {text!r}: expected PREFIX=ACTIONS, e.g. shop/=pull,push")
    try:
        return users.normalize_prefix(prefix), users.parse_actions(actions)
    except users.InvalidInput as e:
        raise ctx.UserError(str(e)) from None


def add_commands(sub: Any, ctx: Any) -> None:
    """Add ``users`` and ``registry`` subcommands to the ``dockyard`` parser."""
    from registry import users

    def run(coro: Any) -> Any:
        try:
            return asyncio.run(coro)
        except users.InvalidInput as e:
            raise ctx.UserError(str(e)) from None

    def create(args: argparse.Namespace) -> int:
        try:
            users.validate_user_name(args.name)
        except users.InvalidInput as e:
            raise ctx.UserError(str(e)) from None
        grants = dict(_parse_grant(g, ctx) for g in args.grant)
        password = _password(args, ctx)
        user = run(users.create_user(ctx.store(args), args.name, password, admin=args.admin, grants=grants))
        ctx.done(args, f"created user {user.name}" + (" (admin)" if user.admin else ""))
        return 0

    def list_(args: argparse.Namespace) -> int:
        rows: list[dict[str, Any]] = []
        for u in users.list_users(ctx.store(args)):
            grants: Any = {p: list(a) for p, a in u.grants.items()}
            if not args.json:
                grants = " ".join(f"{p}={','.join(a)}" for p, a in grants.items())
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(u.created_at))
            rows.append({"name": u.name, "admin": u.admin, "grants": grants, "created": created})
        ctx.emit(args, rows, ["name", "admin", "grants", "created"])
        return 0

    def delete(args: argparse.Namespace) -> int:
        if not run(users.delete_user(ctx.store(args), args.name)):
            raise ctx.UserError(f"no user {args.name}")
        ctx.done(args, f"deleted user {args.name}")
        return 0

    def grant(args: argparse.Namespace) -> int:
        prefix, actions = _parse_grant(f"{args.prefix}={args.actions}", ctx)
        if not run(users.grant(ctx.store(args), args.name, prefix, actions)):
            raise ctx.UserError(f"no user {args.name}")
        ctx.done(args, f"{args.name} may {','.join(actions)} on {prefix}")
        return 0

    def revoke(args: argparse.Namespace) -> int:
        if not run(users.revoke(ctx.store(args), args.name, args.prefix)):
            raise ctx.UserError(f"{args.name} has no grant on {args.prefix}")
        ctx.done(args, f"revoked {args.name} on {args.prefix}")
        return 0

    def passwd(args: argparse.Namespace) -> int:
        password = _password(args, ctx)
        if not run(users.set_password(ctx.store(args), args.name, password)):
            raise ctx.UserError(f"no user {args.name}")
        ctx.done(args, f"changed the password of {args.name}")
        return 0

    def anonymous(args: argparse.Namespace) -> int:
        store = ctx.store(args)
        if args.what == "list":
            ctx.emit(args, [{"prefix": p} for p in users.anonymous_prefixes(store)], ["prefix"])
            return 0
        if not args.prefix:
            raise ctx.UserError(f"anonymous-pull {args.what} needs a PREFIX")
        changed = run(users.set_anonymous_pull(store, args.prefix, args.what == "allow"))
        prefix = users.normalize_prefix(args.prefix)
        state = "allowed" if args.what == "allow" else "not allowed"
        ctx.done(args, f"anonymous pull {state} on {prefix}" + ("" if changed else " (unchanged)"))
        return 0

    group = sub.add_parser("users", help="registry users and their permissions").add_subparsers(
        dest="users_command", required=True, metavar="ACTION"
    )
    p = group.add_parser("create", help="create a registry user (docker login)")
    ctx.data_dir_args(p)
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--admin", action="store_true", help="every action on every repository")
    p.add_argument(
        "--grant", action="append", default=[], metavar="PREFIX=ACTIONS",
        help="e.g. shop/=pull,push,delete (repeatable; * is every repository)",
    )
    p.set_defaults(func=create)
    p = group.add_parser("list", help="list registry users")
    ctx.data_dir_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_)
    p = group.add_parser("delete", help="delete a registry user")
    ctx.data_dir_args(p)
    p.add_argument("name")
    p.set_defaults(func=delete)
    p = group.add_parser("grant", help="set a user's actions on a repository prefix")
    ctx.data_dir_args(p)
    p.add_argument("name")
    p.add_argument("prefix", help="repository prefix, e.g. shop/ (* for all)")
    p.add_argument("actions", help="comma-separated: pull,push,delete")
    p.set_defaults(func=grant)
    p = group.add_parser("revoke", help="remove a user's grant on a repository prefix")
    ctx.data_dir_args(p)
    p.add_argument("name")
    p.add_argument("prefix")
    p.set_defaults(func=revoke)
    p = group.add_parser("passwd", help="change a user's password")
    ctx.data_dir_args(p)
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=passwd)

    reg = sub.add_parser("registry", help="registry settings and maintenance").add_subparsers(
        dest="registry_command", required=True, metavar="ACTION"
    )
    p = reg.add_parser("anonymous-pull", help="allow pulls without credentials under a prefix")
    ctx.data_dir_args(p)
    p.add_argument("what", choices=["allow", "deny", "list"])
    p.add_argument("prefix", nargs="?", help="repository prefix, e.g. public/ (* for all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=anonymous)

    def rm_repo(args: argparse.Namespace) -> int:
        from registry.metadata import Metadata, RepositoryNotEmpty

        try:
            removed = asyncio.run(Metadata(ctx.store(args)).delete_repository(args.name, args.force))
        except RepositoryNotEmpty as e:
            raise ctx.UserError(f"{e}: delete its manifests first, or give --force") from None
        if removed is None:
            raise ctx.UserError(f"no repository {args.name}")
        what = f"{removed.manifests} manifests, {removed.tags} tags" if args.force else "empty"
        ctx.done(args, f"removed repository {args.name} ({what}); blobs no other repository uses go at "
                 "the next garbage collection (dockyard registry gc)")
        return 0

    p = reg.add_parser("rm-repo", help="remove a repository from the catalog (refused while it holds "
                       "manifests, unless --force)")
    ctx.data_dir_args(p)
    p.add_argument("name", help="repository name, e.g. shop/web")
    p.add_argument("--force", action="store_true", help="remove its tags and manifests too")
    p.set_defaults(func=rm_repo)

    def gc(args: argparse.Namespace) -> int:
        from dockyard.aws.protocol import ECR
        from registry.gc import OPERATION

        params: dict[str, Any] = {"dryRun": args.dry_run}
        if args.grace is not None:
            params["graceSeconds"] = args.grace
        report = ctx.client(args).call(ECR, OPERATION, params)
        if args.json:
            print(json.dumps(report, indent=2))
            return 0
        verb = "would delete" if report["dry_run"] else "deleted"
        print(f"{verb} {len(report['blobs_deleted'])} blobs ({_size(report['bytes_deleted'])}) and "
              f"{len(report['uploads_deleted'])} abandoned uploads in {report['seconds']:.2f}s; kept "
              f"{report['blobs_kept']} blobs ({report['blobs_kept_recent']} only for the "
              f"{report['grace']:g}s grace window)")
        return 0

    p = reg.add_parser("gc", help="remove unreferenced blobs and abandoned uploads (server running)")
    ctx.client_args(p)
    p.add_argument("--dry-run", action="store_true", help="report what would go, delete nothing")
    p.add_argument(
        "--grace", type=float, metavar="SECONDS",
        help="keep blobs linked and uploads touched this recently (default: the gc_grace setting)",
    )
    p.set_defaults(func=gc)

    from registry.scan import cli as scan_cli

    scan_cli.add_commands(sub, ctx)  # dockyard vulndb import|status, dockyard scan show


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
