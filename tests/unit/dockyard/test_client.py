"""The CLI's client against a port where nothing listens."""

from __future__ import annotations

import socket

import pytest

from dockyard.client import Client, Unreachable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_does_not_answer_is_unreachable_and_an_os_error_retry_loops_catch() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    client = Client(url, "AKID", "secret", source="a test")
    with pytest.raises(OSError) as caught:  # what `dockyard agent`'s heartbeat loop retries on
        client.call("AmazonEC2ContainerServiceV20141113", "ListClusters")
    assert isinstance(caught.value, Unreachable)
    assert url in str(caught.value) and "a test" in str(caught.value)
