"""`pktpath ip6tables` against the kernel's ip6tables (Debian's, nft backend): the same commands
given to pktpath's host A and to the kernel in a namespace of this test's own list alike; the
IPv6 table is apart from iptables'; and a DROP on a host's INPUT stops the kernel's ping -6 to it
(the kernel as peer over a TAP device, as test_kernel_peer.py wires it), counted on the rule and
as NETFILTER_DROP, until the rule goes. Needs root, `ip netns` and ip6tables; the peer test also
/dev/net/tun and ping."""

import os
import re
import secrets
import shutil
import subprocess
import sys

import pytest

from pktpath.supervisor import Supervisor
from pktpath.topology import load
from pktpath.trace import SAMPLER_ARG
from pktpath.rpc import l3_pb2_grpc

from e2ekit import counter, free_base_port, stub, wait_for

pytestmark = pytest.mark.slow
TAP_NET6 = "fd00:79:"  # a /64: ::1 the kernel, ::2 pktpath's B


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and out.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")
    return out


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
    return subprocess.run([sys.executable, "-m", "pktpath.cli", *words, "--on", on, "--base-port", str(base_port)],
                          capture_output=True, text=True, timeout=60)


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


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    """pktpath's host B with eth0 a TAP device moved into a namespace where the kernel has
    fd00:79::1/64; B has fd00:79::2/64, its DAD done."""
    need(missing("ping"))
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun")
    tag = secrets.token_hex(3)
    ns, tap = f"pktpath-{tag}", f"pk6{tag}"
    tmp = tmp_path_factory.mktemp("ip6tables-peer")
    topology = tmp / "peer.toml"
    topology.write_text(f"""
[[host]]
name = "B"
[[host.interface]]
name = "eth0"
mac = "02:00:00:00:79:02"
addr = "10.79.0.2/24"
addr6 = ["{TAP_NET6}:2/64"]
attach = "tap:{tap}"
""")
    run("ip", "netns", "add", ns)
    sup = None
    try:
        sup = Supervisor(load(topology), free_base_port(1), log_dir=tmp / "logs", env={**os.environ, SAMPLER_ARG: "1"})
        sup.start(timeout=60)
        run("ip", "link", "set", tap, "netns", ns)
        run("ip", "-n", ns, "-6", "addr", "add", f"{TAP_NET6}:1/64", "dev", tap)
        run("ip", "-n", ns, "link", "set", tap, "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        assert wait_for(lambda: "tentative" not in pktpath(sup.base_port, "ip", "-6", "addr", "show", "dev", "eth0",
                                                           on="B").stdout, timeout=15)
        yield sup, ns
    finally:
        if sup is not None:
            statuses = sup.stop()
            assert all(rc == 0 for _, _, rc in statuses), statuses
        run("ip", "netns", "del", ns, check=False)


def test_an_input_drop_stops_the_kernels_ping_6_and_is_counted_until_the_rule_goes(peer):
    sup, ns = peer

    def ping() -> subprocess.CompletedProcess:
        return run("ip", "netns", "exec", ns, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", f"{TAP_NET6}:2",
                   check=False)

    def ip6tables(*words) -> subprocess.CompletedProcess:
        out = pktpath(sup.base_port, "ip6tables", *words, on="B")
        assert out.returncode == 0, (words, out.stderr)
        return out

    l3 = stub(sup, "B", "l3", l3_pb2_grpc.L3Stub)
    before = counter(l3, "Drops", "SKB_DROP_REASON_NETFILTER_DROP")
    ip6tables("-A", "INPUT", "-s", f"{TAP_NET6}:1", "-d", f"{TAP_NET6}:2", "-p", "icmpv6", "-j", "DROP")
    try:
        out = ping()
        assert out.returncode == 1 and " 0 received" in out.stdout, out.stdout + out.stderr
        rule = ip6tables("-L", "INPUT", "-v", "-n", "-x").stdout.splitlines()[2].split()
        assert rule[2:4] == ["DROP", "58"] and int(rule[0]) >= 3 and int(rule[1]) >= 3 * 104, rule
        assert counter(l3, "Drops", "SKB_DROP_REASON_NETFILTER_DROP") - before >= 3
    finally:
        ip6tables("-D", "INPUT", "1")

    def policy_packets() -> int:
        policy = ip6tables("-L", "INPUT", "-v", "-n", "-x").stdout.splitlines()[0]
        return int(re.fullmatch(r"Chain INPUT \(policy ACCEPT (\d+) packets, \d+ bytes\)", policy)[1])

    before = policy_packets()
    out = ping()
    assert out.returncode == 0 and "3 received" in out.stdout, out.stdout + out.stderr
    assert policy_packets() - before >= 3  # what the policy let in: the echo requests at least
