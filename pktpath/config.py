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
import secrets
import stat
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


# The credential of administrative calls (pktpath.access): `authorization: Bearer <token>`.
AUTHORIZATION = "authorization"


class _Credential(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                  grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the run's admin token to every call of a channel."""

    def __init__(self, token: str) -> None:
        self._metadata = ((AUTHORIZATION, f"Bearer {token}"),)

    def _with_token(self, details):
        return details._replace(metadata=tuple(details.metadata or ()) + self._metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    intercept_unary_stream = intercept_unary_unary

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._with_token(details), request_iterator)

    intercept_stream_stream = intercept_stream_unary


class TlsError(RuntimeError):
    """PKTPATH_TLS_DIR names a directory without what TLS needs."""


TLS_DIR_ENV = "PKTPATH_TLS_DIR"
TLS_NAME = "pktpath"  # the name (subjectAltName) every service's certificate carries


def _tls_file(name: str, *, required: bool = True) -> bytes | None:
    path = os.path.join(os.environ[TLS_DIR_ENV], name)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        if required:
            raise TlsError(f"{TLS_DIR_ENV}: cannot read {path}: {exc.strerror}") from None
        return None


def tls_enabled() -> bool:
    return bool(os.environ.get(TLS_DIR_ENV))


def server_credentials() -> grpc.ServerCredentials | None:
    """TLS for a service when PKTPATH_TLS_DIR is set: its cert.pem and key.pem (for the name
    TLS_NAME, signed by ca.pem's CA or self-signed). None: plaintext, as on loopback by default."""
    if not tls_enabled():
        return None
    return grpc.ssl_server_credentials([(_tls_file("key.pem"), _tls_file("cert.pem"))])


def channel(target: str, token: str | None = None) -> grpc.Channel:
    """A channel to a pktpath service; with the run's admin token, every call carries it. With
    PKTPATH_TLS_DIR set, it is TLS and trusts that directory's ca.pem (cert.pem if there is
    none) for the name TLS_NAME, whatever address it dials (compose's service names)."""
    if tls_enabled():
        ca = _tls_file("ca.pem", required=False) or _tls_file("cert.pem")
        ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=ca),
                                 options=CHANNEL_OPTIONS + [("grpc.ssl_target_name_override", TLS_NAME)])
    else:
        ch = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc.intercept_channel(ch, _Credential(token)) if token else ch


LAYERS = ("nic", "softirq", "l2", "l3", "l4", "socket")
HTTP_PORT_OFFSET = 500
DEFAULT_BASE_PORT = 50000
DEFAULT_BIND = "127.0.0.1"


@dataclass(frozen=True)
class Addresses:
    topology: Topology
    base_port: int = DEFAULT_BASE_PORT
    bind: str = DEFAULT_BIND
    run_id: str = ""  # the run's name (its runtime directory's); the base port when empty

    @property
    def run(self) -> str:
        return self.run_id or str(self.base_port)

    def channel(self, host: str, layer: str) -> grpc.Channel:
        """A channel to `layer` of `host` that carries the run's admin token when this user can
        read it (the run's owner can; pktpath.access), so administrative calls are allowed."""
        return channel(self.target(host, layer), read_token(self.run))

    def target(self, host: str, layer: str) -> str:
        """host:port where `layer` of `host` serves: on its machine (`at`), else on this one."""
        override = os.environ.get(f"PKTPATH_TARGET_{host.upper()}_{layer.upper()}")
        if override:
            return override
        if layer == "orchestrator":
            return f"{self.bind}:{self.base_port}"
        return f"{self.at(host) or self.bind}:{self.port(host, layer)}"

    def port(self, host: str, layer: str) -> int:
        """The layout's port of `layer` of `host` (the orchestrator's: the base)."""
        if layer == "orchestrator":
            return self.base_port
        index = [h.name for h in self.topology.hosts].index(host)
        return self.base_port + 10 * (index + 1) + LAYERS.index(layer)

    def at(self, host: str) -> str:
        """The machine `host` runs on, an address or a name: PKTPATH_AT_<HOST> when set (a
        Pod names itself 127.0.0.1 and its peers by their Services), else the topology's
        `at`; "" for this machine."""
        override = os.environ.get(f"PKTPATH_AT_{host.upper()}")
        return override if override is not None else self.topology.host(host).at

    def tunneled(self, a: str, b: str) -> bool:
        """Whether a link between hosts a and b crosses machines, and so is a VXLAN tunnel
        rather than a Unix socket in the run's directory."""
        return self.at(a) != self.at(b)

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


class RuntimeDirError(RuntimeError):
    """The run's directory exists and is not private to this user."""


def hop_dir(run_id: str) -> str:
    """Where the hop listeners and interrupt lines of one run put their Unix sockets: in
    $XDG_RUNTIME_DIR (private to the user) when there is one, else a directory of the
    user's own in the temporary directory. PKTPATH_HOP_DIR overrides (compose: a volume)."""
    explicit = os.environ.get("PKTPATH_HOP_DIR")
    if explicit:
        return explicit
    return os.path.join(runtime_base(), f"{RUN_DIR_PREFIX}{run_id}")


RUN_DIR_PREFIX = f"pktpath-{os.getuid()}-"


def runtime_base() -> str:
    """Where this user's runs keep their directories: $XDG_RUNTIME_DIR, else the temporary directory."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    return base if base and os.path.isdir(base) else tempfile.gettempdir()


def runtime_dir(run_id: str) -> str:
    """hop_dir(), made 0700 if it is not there, and refused unless it is a directory this
    user owns that no one else can enter: another local user who made it first (with mode
    0777, say) could put their own socket where a layer's should be and read the traffic.
    A directory PKTPATH_HOP_DIR names is the operator's choice and is left as it is."""
    path = hop_dir(run_id)
    if os.environ.get("PKTPATH_HOP_DIR"):
        os.makedirs(path, exist_ok=True)
        return path
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
        raise RuntimeDirError(f"{path} exists and is not private to you (owner uid {st.st_uid}, mode "
                              f"{stat.S_IMODE(st.st_mode):o}): another user may have made it; remove it, "
                              f"or set PKTPATH_HOP_DIR")
    return path


def hop_path(run_id: str, host: str, layer: str) -> str:
    """The Unix socket on which host's `layer` takes batches from the layer before it."""
    return os.path.join(hop_dir(run_id), f"{host}-{layer}.hop")


def irq_path(run_id: str, host: str, dev: str) -> str:
    """The Unix socket of host:dev's interrupt line (NIC ↔ its driver in softirq)."""
    return os.path.join(hop_dir(run_id), f"{host}-{dev}.irq")


def shm_name(run_id: str, host: str, dev: str) -> str:
    """The shared-memory segment of host:dev's rings (named so leftovers are recognisable)."""
    return f"pktpath-{run_id}-{host}-{dev}"


TOKEN_FILE = "admin.token"
TOKEN_FILE_ENV = "PKTPATH_TOKEN_FILE"


def token_path(run_id: str) -> str:
    """The run's admin token: in its runtime directory, or where PKTPATH_TOKEN_FILE says when
    the run's machines share no directory (each has a copy; in Kubernetes, a Secret's)."""
    return os.environ.get(TOKEN_FILE_ENV) or os.path.join(hop_dir(run_id), TOKEN_FILE)


def read_token(run_id: str) -> str | None:
    """The run's admin token, or None where there is none or this user may not read it."""
    try:
        with open(token_path(run_id), encoding="ascii") as f:
            return f.read().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def ensure_token(run_id: str) -> str:
    """The run's admin token, made by whichever of its processes comes first: a new random
    one, 0600 in the run's private directory. Written whole before it is given its name
    (a link), so that the services starting at the same moment all read the same one."""
    path = token_path(run_id)
    token = read_token(run_id)
    if token:
        return token
    scratch = f"{path}.{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32) + "\n")
    try:
        os.link(scratch, path)
    except FileExistsError:
        pass  # another process of the run was first: its token is the run's
    finally:
        os.unlink(scratch)
    token = read_token(run_id)
    if not token:
        raise RuntimeDirError(f"{path}: cannot read the run's admin token")
    return token
