"""The path's seams, named once in pktpath/seams.py, are the ones the services serve and open."""

import importlib
import pathlib
import re
import subprocess
import sys

import pytest

from pktpath import seams

SERVICES = pathlib.Path(__file__).resolve().parent.parent / "services"


def servicer_class(layer: str):
    module = importlib.import_module(f"pktpath.services.{layer}.server")
    return next(v for k, v in vars(module).items() if k.endswith("Servicer") and v.__module__ == module.__name__)


def batch_handlers(cls) -> dict:
    return {name: getattr(cls, name) for name in dir(cls) if hasattr(getattr(cls, name), "hop_batch")}


@pytest.mark.parametrize("edge", [*seams.EDGES, seams.LINK], ids=lambda e: f"{e.src}-{e.name}")
def test_every_edge_lands_on_a_batch_handler_of_its_layer_taking_its_message(edge):
    handlers = batch_handlers(servicer_class(edge.dst))
    assert edge.method in handlers, f"{edge.dst} serves no batches of {edge.method}"
    assert handlers[edge.method].hop_request is edge.request


@pytest.mark.parametrize("edge", seams.EDGES, ids=lambda e: f"{e.src}-{e.name}")
def test_every_edge_encodes_an_empty_batch_as_its_message(edge):
    assert type(edge.encode([])) is edge.request


@pytest.mark.parametrize("call", seams.CALLS, ids=lambda c: f"{c.src}-{c.method}")
def test_every_synchronous_call_is_an_rpc_of_the_layer_below(call):
    assert callable(getattr(servicer_class(call.dst), call.method, None))
    assert seams.LAYERS.index(call.dst) < seams.LAYERS.index(call.src)


def test_every_batch_handler_a_layer_serves_is_an_edge_into_it():
    for layer in seams.LAYERS:
        served = set(batch_handlers(servicer_class(layer)))
        named = {e.method for e in seams.edges_into(layer)} | ({seams.LINK.method} if layer == "nic" else set())
        assert served <= named, f"{layer} serves batches no edge names: {served - named}"


def test_no_service_opens_a_hop_but_from_an_edge():
    for server in SERVICES.glob("*/server.py"):
        assert not re.search(r"\bHop\(", server.read_text()), f"{server} builds a Hop by hand"


def test_the_seams_and_the_layers_logic_load_no_grpc():
    modules = ["pktpath.seams", "pktpath.hop", "pktpath.trace", "pktpath.sockerr", "pktpath.validate",
               "pktpath.services.l2.link", "pktpath.services.l3.ipv4", "pktpath.services.l4.udp",
               "pktpath.services.l4.tcp.ipv4", "pktpath.services.socket.sock", "pktpath.services.softirq.napi"]
    code = f"import sys; [__import__(m) for m in {modules!r}]; print(sorted(m for m in sys.modules if 'grpc' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
