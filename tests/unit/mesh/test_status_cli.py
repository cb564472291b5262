"""``dockyard mesh status``: its table, and its place under a ``dockyard mesh`` parser that
another module may have made first."""

from __future__ import annotations

import argparse

from mesh.status_cli import add_commands, mesh_actions, status_rows


class Ctx:
    @staticmethod
    def client_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true")


def test_status_joins_an_existing_mesh_parser_or_makes_one():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    mesh = sub.add_parser("mesh").add_subparsers(dest="mesh_command")
    mesh.add_parser("show")
    add_commands(sub, Ctx)
    assert set(mesh_actions(sub).choices) == {"show", "status"}
    alone = argparse.ArgumentParser().add_subparsers(dest="command")
    add_commands(alone, Ctx)
    assert set(mesh_actions(alone).choices) == {"status"}


def test_the_table_marks_versions_behind_the_snapshot_and_the_last_nack():
    sidecar = {
        "Node": "arn:task/1",
        "Connected": True,
        "Ready": False,
        "Snapshot": {"CDS": "aaaaaaaaaaaa", "EDS": "bbbb", "LDS": "cccc", "RDS": "dddd"},
        "Acked": {"CDS": "aaaaaaaaaaaa", "EDS": "bbbb", "LDS": "cccc", "RDS": "0000"},
        "LastNack": {
            "TypeUrl": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            "ErrorDetail": "bad regex",
        },
    }
    (row,) = status_rows([sidecar])
    assert row == {
        "node": "arn:task/1",
        "connected": "yes",
        "ready": "no",
        "cds": "aaaaaaaa",
        "eds": "bbbb",
        "lds": "cccc",
        "rds": "0000*",
        "last_nack": "RouteConfiguration bad regex",
    }
