"""The Docker transport while its engine is away (a socket nobody listens on; no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.agent.transport import DockerError, DockerTransport


def test_a_transport_to_an_engine_that_is_down_builds_and_each_call_is_a_docker_error(tmp_path: Path) -> None:
    t = DockerTransport(f"unix://{tmp_path}/absent.sock", timeout=2)  # dockerd restarting
    with pytest.raises(DockerError, match=r"absent\.sock|No such file"):
        t.info()
    with pytest.raises(DockerError):
        t.inspect("abc")
    with pytest.raises(DockerError):  # connecting the event stream too: its follower retries
        t.events(None, "dockyard.task")
    t.close()
