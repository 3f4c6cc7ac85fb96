"""Where every service of a topology listens, and how one finds another.

The embedded default lays ports out from a base port: the orchestrator at
base, host number i (0-based, in topology order) at base + 10*(i+1) + the
layer's index (nic 0, softirq 1, l2 2, l3 3, l4 4, socket 5). With base 50000
host A's socket API is at 127.0.0.1:50015. An environment variable
PKTPATH_TARGET_<HOST>_<LAYER> (e.g. PKTPATH_TARGET_A_L3=a-l3:50051) overrides
one address, which is how compose points services at each other by name.
Each service's HTTP port (/metrics; the orchestrator's dashboard too) is its
gRPC port + 500 (50515 for A's socket layer, 50500 for the dashboard), or
PKTPATH_HTTP_PORT for every service (in containers, each has its own).
"""

import os
import tempfile
from dataclasses import dataclass

import grpc

from pktpath.topology import Topology

# Peers are local and restart fast: retry a refused connection after 100 ms, not
# gRPC's default 1 s (which would stall the first packets after a start-up race).
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def channel(target: str) -> grpc.Channel:
    """A channel to another pktpath service."""
    return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)


LAYERS = ("nic", "softirq", "l2", "l3", "l4", "socket")
HTTP_PORT_OFFSET = 500
DEFAULT_BASE_PORT = 50000
DEFAULT_BIND = "127.0.0.1"


@dataclass(frozen=True)
class Addresses:
    topology: Topology
    base_port: int = DEFAULT_BASE_PORT
    bind: str = DEFAULT_BIND

    def target(self, host: str, layer: str) -> str:
        """host:port where `layer` of `host` serves."""
        override = os.environ.get(f"PKTPATH_TARGET_{host.upper()}_{layer.upper()}")
        if override:
            return override
        if layer == "orchestrator":
            return f"{self.bind}:{self.base_port}"
        index = [h.name for h in self.topology.hosts].index(host)
        return f"{self.bind}:{self.base_port + 10 * (index + 1) + LAYERS.index(layer)}"

    def http(self, host: str, layer: str) -> str:
        """host:port of the service's HTTP server (/metrics; the orchestrator's dashboard)."""
        name, port = self.target(host, layer).rsplit(":", 1)
        fixed = os.environ.get("PKTPATH_HTTP_PORT")
        port = fixed or str(int(port) + HTTP_PORT_OFFSET)
        return f"{'0.0.0.0' if os.environ.get('PKTPATH_LISTEN_ALL') else name}:{port}"

    def listen(self, host: str, layer: str) -> str:
        """What a service binds: its port on all interfaces inside a container, else its target."""
        target = self.target(host, layer)
        if os.environ.get("PKTPATH_LISTEN_ALL"):
            return f"0.0.0.0:{target.rsplit(':', 1)[1]}"
        return target


def hop_dir(run_id: str) -> str:
    """Where the hop listeners of one run put their Unix sockets (PKTPATH_HOP_DIR overrides)."""
    return os.environ.get("PKTPATH_HOP_DIR") or os.path.join(tempfile.gettempdir(), f"pktpath-{run_id}")


def hop_path(run_id: str, host: str, layer: str) -> str:
    """The Unix socket on which host's `layer` takes batches from the layer before it."""
    return os.path.join(hop_dir(run_id), f"{host}-{layer}.hop")


def irq_path(run_id: str, host: str, dev: str) -> str:
    """The Unix socket of host:dev's interrupt line (NIC ↔ its driver in softirq)."""
    return os.path.join(hop_dir(run_id), f"{host}-{dev}.irq")


def shm_name(run_id: str, host: str, dev: str) -> str:
    """The shared-memory segment of host:dev's rings (named so leftovers are recognisable)."""
    return f"pktpath-{run_id}-{host}-{dev}"
