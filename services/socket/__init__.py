"""socket: the BSD socket API for clients, receive/send queues, copies to/from user.

Models net/socket.c and net/ipv4/af_inet.c.
"""
