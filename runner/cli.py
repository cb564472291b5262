"""Command-line commands of this part (added to ``dockyard`` by ``dockyard.cli``)."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any, ctx: Any) -> None:
    """Add this part's subcommands to the ``dockyard`` parser."""
