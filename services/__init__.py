"""pktpath's layer services, one package per layer of the kernel's stack.

Imported as pktpath.services.<layer>: the repository keeps them at its top level
so the layout shows the architecture, the install maps them under pktpath.
"""
