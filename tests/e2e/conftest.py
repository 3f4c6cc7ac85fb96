"""End-to-end fixtures: a whole topology as real processes, started once per test module."""

import os
import sys
from pathlib import Path

import pytest

from pktpath.supervisor import Supervisor
from pktpath.topology import load
from pktpath.trace import SAMPLER_ARG

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)  # e2ekit, the helpers the tests share

from e2ekit import free_base_port  # noqa: E402


def start_topology(name: str, tmp_path_factory) -> Supervisor:
    topo = load(name)
    log_dir = Path(tmp_path_factory.mktemp(f"logs-{topo.name}"))
    # every packet traced: the tests follow single packets' journeys and count their copies
    env = {**os.environ, SAMPLER_ARG: "1"}
    sup = Supervisor(topo, free_base_port(len(topo.hosts)), log_dir=log_dir, env=env)
    sup.start(timeout=60)
    return sup


def running(name: str, tmp_path_factory):
    """A module fixture's body: the topology up for the module, then every service exits 0."""
    sup = start_topology(name, tmp_path_factory)
    yield sup
    statuses = sup.stop()
    assert all(rc == 0 for _, _, rc in statuses), statuses


@pytest.fixture(scope="module")
def default_topology(tmp_path_factory):
    yield from running("default", tmp_path_factory)


@pytest.fixture(scope="module")
def router_topology(tmp_path_factory):
    yield from running("router", tmp_path_factory)


@pytest.fixture(scope="module")
def lossy_topology(tmp_path_factory):
    yield from running("lossy", tmp_path_factory)
