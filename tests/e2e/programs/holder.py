"""A program that holds sockets on a pktpath host, then dies as it is told to.

    holder.py SOCKET_API PEER_ADDR PEER_PORT LISTEN_PORT UDP_PORT

It listens on LISTEN_PORT, binds UDP_PORT, connects twice to the peer (the first
connection will have unread data when it dies, the second none), prints its
descriptors as one line, then reads one command from stdin: "exit" (ends without
closing anything), "raise" (an uncaught exception), or nothing at all (the test
kills it with -9, or cuts its connection)."""

import sys

from pktpath.client import SOCK_DGRAM, SOCK_STREAM, SocketApi

api_target, peer, peer_port, listen_port, udp_port = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
api = SocketApi(api_target)
listener = api.socket(SOCK_STREAM)
listener.bind(("0.0.0.0", listen_port))
listener.listen(8)
udp = api.socket(SOCK_DGRAM)
udp.bind(("0.0.0.0", udp_port))
unread, clean = api.socket(SOCK_STREAM), api.socket(SOCK_STREAM)
unread.connect((peer, peer_port), timeout=10)
clean.connect((peer, peer_port), timeout=10)
print(listener.fd, udp.fd, unread.fd, clean.fd, unread.getsockname()[1], clean.getsockname()[1], flush=True)
command = sys.stdin.readline().strip()
if command == "raise":
    raise RuntimeError("the program fails")
if command == "exit":
    sys.exit(0)
sys.stdin.read()  # until killed
