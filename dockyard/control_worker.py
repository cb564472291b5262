"""Entry point of a control-worker process: ``python -m dockyard.control_worker``, started by
``dockyard.control.workers.start_workers`` (the main process names this module).

It is the assembly's side of the worker seam: it builds the worker's :class:`Platform` (the
store's parts installed in the ``worker`` role) and hands that factory to
:func:`dockyard.control.workers.main`, so the worker package never imports the assembly.
"""

from __future__ import annotations

from dockyard.config import Config
from dockyard.control import workers
from dockyard.platform import Platform, assemble
from dockyard.store import Store

__all__ = ["build", "main"]


def build(config: Config, store: Store) -> Platform:
    """A worker's view of Dockyard: every part installed in the ``worker`` role."""
    platform = Platform(config, store, role="worker")
    assemble(platform)
    return platform


def main() -> None:
    workers.main(build)


if __name__ == "__main__":
    main()
