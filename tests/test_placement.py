"""Where a host runs: the topology's `at`, or PKTPATH_AT_<HOST>, moves its services' addresses
and makes its links to hosts elsewhere tunnels; `pktpath up --only` runs a part of a topology."""

import pytest

from pktpath.config import Addresses
from pktpath.supervisor import services_of
from pktpath.topology import load, parse

HOSTS = {"host": [{"name": n, "at": at, "interface": [{"name": "eth0", "mac": f"02:00:00:00:00:0{i}",
                                                        "addr": f"10.0.0.{i}/24"}]}
                  for i, (n, at) in enumerate([("A", "10.99.0.1"), ("B", "10.99.0.2"), ("C", "10.99.0.2")], 1)]}


def test_a_hosts_services_are_at_its_machine_and_its_links_to_other_machines_are_tunnels():
    addrs = Addresses(parse(HOSTS), 40000)
    assert addrs.target("A", "socket") == "10.99.0.1:40015" and addrs.target("C", "nic") == "10.99.0.2:40030"
    assert addrs.target("", "orchestrator") == "127.0.0.1:40000"  # where it is run from
    assert addrs.tunneled("A", "B") and not addrs.tunneled("B", "C")  # B and C share a machine


def test_the_environment_places_a_host_whatever_the_file_says(monkeypatch):
    """A Pod names itself 127.0.0.1 (its containers share one network namespace) and its peers
    by their Services."""
    monkeypatch.setenv("PKTPATH_AT_A", "127.0.0.1")
    monkeypatch.setenv("PKTPATH_AT_B", "b")
    addrs = Addresses(load("default"), 40000)
    assert addrs.target("A", "l3") == "127.0.0.1:40013" and addrs.target("B", "l3") == "b:40023"
    assert addrs.at("A") == "127.0.0.1" and addrs.tunneled("A", "B")


def test_only_runs_the_hosts_it_names_and_the_orchestrator_if_named():
    topo = load("router")
    assert services_of(topo, ["R"]) == [("R", layer) for layer in ("nic", "softirq", "l2", "l3", "l4", "socket")]
    assert services_of(topo, ["orchestrator"]) == [("", "orchestrator")]
    assert len(services_of(topo)) == 19 and services_of(topo)[-1] == ("", "orchestrator")
    with pytest.raises(ValueError, match="Q: not a host of topology router"):
        services_of(topo, ["Q"])
