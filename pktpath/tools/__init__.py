"""The tools a Linux person reaches for, over a running topology: ping and nc-like programs
(apps), tcpdump (capture), pwru and dropwatch (observe), the copy count (copies), the
walk-through demo (walkthrough) and the compose file (compose). `pktpath.cli` is their
command line; the stack itself (pktpath/, services/) needs none of them."""
