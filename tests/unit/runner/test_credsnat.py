"""runner.credsnat: the DNAT rule that puts the credentials endpoint at 169.254.170.2, and
that the URI tasks get is one botocore's container credentials fetcher accepts."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from botocore.utils import ContainerMetadataFetcher

from dockyard.config import Config
from runner import credsnat, taskcreds


def test_the_rules_match_only_the_link_local_address_and_the_endpoints_port() -> None:
    assert credsnat.chain(41234) == "DOCKYARD-CREDS-41234"
    assert credsnat.jumps(41234) == [
        [hook, "-d", "169.254.170.2/32", "-p", "tcp", "--dport", "41234", "-j", "DOCKYARD-CREDS-41234"]
        for hook in ("PREROUTING", "OUTPUT")
    ]
    assert credsnat.dnat("172.17.0.1", 41234) == [
        "DOCKYARD-CREDS-41234", "-d", "169.254.170.2/32", "-p", "tcp", "--dport", "41234",
        "-j", "DNAT", "--to-destination", "172.17.0.1:41234",
    ]


def test_the_rule_needs_root_iptables_and_a_bridge_address() -> None:
    out = json.dumps([{}, {"ifname": "docker0", "addr_info": [{"family": "inet", "local": "172.17.0.1"}]}])
    bridges = credsnat.bridge_addresses(out)
    assert bridges == {"172.17.0.1"}
    assert credsnat.bridge_addresses("not json") == set()
    assert credsnat.usable("172.17.0.1", True, True, bridges) == ""
    assert "root" in credsnat.usable("172.17.0.1", False, True, bridges)
    assert "iptables" in credsnat.usable("172.17.0.1", True, False, bridges)
    assert "bridge" in credsnat.usable("10.0.0.1", True, True, bridges)


def test_botocore_accepts_the_routed_uri_and_refuses_the_bridge_one() -> None:
    creds = taskcreds.TaskCredentials(None, None, b"k")  # type: ignore[arg-type]
    fetcher = ContainerMetadataFetcher()
    creds.base = credsnat.public_base(41234)
    uri = creds.environment("t1")["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    assert uri == "http://169.254.170.2:41234/v1/tasks/t1/credentials"
    fetcher._validate_allowed_url(uri)  # raises if refused
    creds.base = "http://172.17.0.1:41234"  # the fallback without the rule
    with pytest.raises(ValueError):
        fetcher._validate_allowed_url(creds.environment("t1")["AWS_CONTAINER_CREDENTIALS_FULL_URI"])


async def test_an_endpoint_off_a_bridge_keeps_its_own_address_and_says_why(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config(data_dir=str(tmp_path), task_credentials_host="127.0.0.1")
    creds = taskcreds.TaskCredentials(None, config, b"k")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="runner.taskcreds"):
        async for _ in creds.serve(None):
            assert creds.base.startswith("http://127.0.0.1:")
    assert [r.getMessage() for r in caplog.records if "AWS SDKs refuse" in r.getMessage()] != []
    assert creds.base == ""
