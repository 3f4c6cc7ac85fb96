"""`pktpath ip6tables` against the kernel's ip6tables (Debian's, nft backend): the same commands
given to pktpath's host A and to the kernel in a namespace of this test's own list alike; the
IPv6 table is apart from iptables'. (A DROP stopping the kernel's ping -6 is test_kernel_peer.py's,
where the kernel is a peer.) Needs root, `ip netns` and ip6tables."""

import os
import re
import secrets
import shutil
import subprocess

import pytest

from pktpath.machines import run

from e2ekit import cli_here

pytestmark = pytest.mark.slow


def missing(*tools: str) -> str:
    """Why this machine cannot run the kernel's side, or ''."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    lacking = [t for t in ("ip", "ip6tables", *tools) if not shutil.which(t)]
    if lacking:
        return f"missing {', '.join(lacking)} (Debian: iproute2, iptables, iputils-ping)"
    return ""


def need(reason: str) -> None:
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def pktpath(base_port: int, *words: str, on: str = "A") -> subprocess.CompletedProcess:
    return cli_here(*words, "--on", on, "--base-port", str(base_port))


@pytest.fixture(scope="module")
def kernel_ns():
    """A namespace of this test's own: the kernel's ip6tables there takes the same commands."""
    need(missing())
    ns = f"pktpath-ip6t-{secrets.token_hex(3)}"
    run("ip", "netns", "add", ns)
    try:
        yield ns
    finally:
        run("ip", "netns", "del", ns, check=False)


RULES = [["-A", "INPUT", "-p", "udp", "--dport", "9999", "-j", "DROP"],
         ["-I", "INPUT", "1", "-s", "2001:db8::2/128", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
         ["-A", "OUTPUT", "-d", "2001:db8::/64", "-p", "icmpv6", "-j", "DROP"],
         ["-A", "INPUT", "-s", "fe80::/10", "-d", "ff02::1", "-p", "ipv6-icmp", "-j", "ACCEPT"],
         ["-A", "FORWARD", "-j", "DROP"], ["-P", "FORWARD", "DROP"],
         ["-A", "INPUT", "-p", "udp", "--sport", "53", "-j", "ACCEPT"],
         ["-I", "INPUT", "-p", "udp", "--sport", "7", "--dport", "7", "-j", "ACCEPT"],
         ["-A", "INPUT", "-s", "2001:DB8::5/64", "-p", "41", "-j", "DROP"],
         ["-D", "INPUT", "4"], ["-A", "INPUT", "-s", "2001:db8::9", "-j", "DROP"],
         ["-D", "INPUT", "-s", "2001:db8::9", "-j", "DROP"], ["-Z"]]


def test_ip6tables_changes_and_lists_chains_as_the_kernels_ip6tables_does(default_topology, kernel_ns):
    """Every listing alike (counters aside: the two see different traffic), and so are the
    refusals, in ip6tables' words and exit codes."""
    base = default_topology.base_port

    def ours(*words, ok=True):
        out = pktpath(base, "ip6tables", *words)
        assert not ok or out.returncode == 0, (words, out.stderr)
        return out

    def theirs(*words, ok=True):
        out = run("ip", "netns", "exec", kernel_ns, "ip6tables", *words, check=ok)
        return out

    def same_counts(text: str) -> list[str]:  # counters blanked
        text = re.sub(r"\d+ packets, \d+ bytes", "N packets, N bytes", text)
        return [re.sub(r"^(\d+\s+)?\s*\d+[KMGT]?\s+\d+[KMGT]? ", r"\1N N ", line) for line in text.splitlines()]

    try:
        for rule in RULES:
            assert ours(*rule).stderr == theirs(*rule).stderr  # no warnings, both
        for flags in (["-L", "-n"], ["-L"], ["-L", "INPUT", "-n", "--line-numbers"], ["-nL", "FORWARD"],
                      ["-L", "INPUT", "3"]):
            assert ours(*flags).stdout == theirs(*flags).stdout, flags  # byte for byte
        for flags in (["-L", "-v", "-n"], ["-L", "-v", "-n", "-x"], ["-nvL", "INPUT", "--line-numbers"], ["-vL"]):
            assert same_counts(ours(*flags).stdout) == same_counts(theirs(*flags).stdout), flags
        for words in (["-D", "INPUT", "-p", "tcp", "--dport", "1", "-j", "DROP"], ["-A", "PREROUTING", "-j", "DROP"],
                      ["-I", "INPUT", "9", "-j", "DROP"], ["-D", "INPUT", "9"], ["-P", "INPUT", "FOO"],
                      ["-L", "FOO"], ["-A", "INPUT", "-s", "10.0.0.1", "-j", "DROP"], ["-A", "INPUT", "-p", "44",
                                                                                       "-j", "ACCEPT"]):
            mine, kernel = ours(*words, ok=False), theirs(*words, ok=False)
            assert (mine.returncode, mine.stderr) == (kernel.returncode,
                                                      kernel.stderr.replace("(nf_tables)", "(pktpath)")), words
        assert ours("-L", "INPUT", "-n").stdout == theirs("-L", "INPUT", "-n").stdout  # -p 44's too
    finally:
        for cmd in (["-F"], ["-P", "FORWARD", "ACCEPT"]):
            ours(*cmd)
            theirs(*cmd)


def test_the_ipv6_table_is_apart_from_iptables(default_topology):
    """ip6tables -P INPUT DROP on B leaves IPv4 alone: iptables lists nothing of it and A's
    IPv4 ping is answered."""
    base = default_topology.base_port
    try:
        assert pktpath(base, "ip6tables", "-P", "INPUT", "DROP", on="B").returncode == 0
        assert pktpath(base, "ip6tables", "-A", "OUTPUT", "-p", "icmpv6", "-j", "ACCEPT", on="B").returncode == 0
        v4 = pktpath(base, "iptables", "-L", "-n", on="B").stdout.splitlines()
        assert v4[0] == "Chain INPUT (policy ACCEPT)" and not [line for line in v4 if line.startswith("ACCEPT")]
        v6 = pktpath(base, "ip6tables", "-L", "-n", on="B").stdout.splitlines()
        assert v6[0] == "Chain INPUT (policy DROP)" and v6[-1].startswith("ACCEPT     58   --  ::/0")
        assert pktpath(base, "ping", "10.0.0.2", "-c", "2", "-i", "0.2", "-W", "5").returncode == 0
    finally:
        pktpath(base, "ip6tables", "-P", "INPUT", "ACCEPT", on="B")
        pktpath(base, "ip6tables", "-F", on="B")
