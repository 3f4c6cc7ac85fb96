"""pktpath: the Linux kernel's packet receive and send path, one gRPC service per layer.

The shared library lives here: wire codecs (pktpath.wire), the sk_buff model
(pktpath.skbuff), protobuf access (pktpath.pb) and the CLI. The layer services
are pktpath.services.<layer>, kept in the repository's top-level services/.
"""

__version__ = "0.1.0"
