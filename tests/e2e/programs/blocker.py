"""A program with many calls blocked at once on a pktpath host.

    blocker.py SOCKET_API CALLS

It opens CALLS UDP sockets and starts a recvfrom on each without a time limit (as
gRPC futures: the program itself needs no thread per call), prints "ready" once the
host has every call, and stays so until its stdin closes; then it ends its calls and exits."""

import sys

from pktpath.client import SOCK_DGRAM, SocketApi
from pktpath.pb import socket_pb2

api = SocketApi(sys.argv[1])
socks = [api.socket(SOCK_DGRAM) for _ in range(int(sys.argv[2]))]
for sock in socks:
    sock.bind(("0.0.0.0", 0))
metadata = api.attach()
calls = [api.stub.Recvfrom.future(socket_pb2.RecvfromRequest(fd=s.fd), metadata=metadata) for s in socks]
print("ready", flush=True)
sys.stdin.read()
for call in calls:  # gRPC can deadlock collecting a future still pending at exit: end them first
    call.cancel()
api.close()
