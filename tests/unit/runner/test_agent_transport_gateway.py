"""``runner.agent.transport.ipam_gateway``: a network's IPv4 gateway from its IPAM config."""

from __future__ import annotations

from runner.agent.transport import ipam_gateway


def test_the_gateway_given_is_used_and_an_ipv6_one_is_not():
    assert ipam_gateway([{"Subnet": "fd00::/64", "Gateway": "fd00::1"},
                         {"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]) == "172.17.0.1"


def test_a_subnet_without_gateway_has_dockers_default_its_first_host_address():
    # what Docker 20.10 shows for the default bridge once the daemon was restarted
    assert ipam_gateway([{"Subnet": "172.17.0.0/16"}]) == "172.17.0.1"
    assert ipam_gateway([{"Subnet": "10.9.8.0/24"}, {"Subnet": "fd00::/64"}]) == "10.9.8.1"


def test_no_ipv4_config_has_no_gateway():
    assert ipam_gateway([]) == "" and ipam_gateway([{"Subnet": "fd00::/64"}]) == ""
