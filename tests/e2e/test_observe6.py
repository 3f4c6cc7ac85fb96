"""IPv6 on a running topology as the observing tools show it. While A and B resolve each other
(neighbour discovery), ping over ICMPv6, send UDP over IPv6 (3000 bytes in fragments) and one
datagram to a closed port (B's port unreachable): `pktpath tcpdump` captures the wire and layer
boundaries, which tshark reads with nothing malformed and every checksum good, and which tcpdump
prints line for line as `pktpath tcpdump -r` does, pcap-filter expressions for IPv6 included;
`pktpath netstat -6` prints the hosts' Ip6, Icmp6 and Udp6 counters as net-tools' netstat -s -6 prints
them; /metrics carries them under node_exporter's names."""

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pktpath.client import AF_INET6, IPPROTO_ICMP, IPPROTO_ICMPV6
from pktpath.tools.netstat import NETSTAT6_GROUPS, netstat_s6, snmp6_lines

from e2ekit import cli_here, wait_for, with_sockets

pytestmark = pytest.mark.slow
A6, B6 = "2001:db8::1", "2001:db8::2"
POINTS = {"A:eth0": "a-eth0.pcap", "A:nic": "a-nic.pcapng", "A:l4": "a-l4.pcapng", "B:softirq": "b-softirq.pcapng",
          "B:l2": "b-l2.pcapng", "B:l3": "b-l3.pcapng", "B:l4": "b-l4.pcapng"}
CHECKS = ["-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
          "-o", "ipv6.defragment:FALSE"]
BAD = ("_ws.malformed or _ws.expert.severity >= 8388608 or udp.checksum.status == 0 or icmpv6.checksum.status == 0"
       " or ip.checksum.status == 0 or icmp.checksum.status == 0")


def installed(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (.ci/run installs Debian's {name})")
        pytest.skip(f"{name} is not installed (apt-get install {name})")
    return path


def pktpath(sup, *words: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pktpath.cli", *words, "--base-port", str(sup.base_port)],
                          capture_output=True, text=True, timeout=60)


def tshark(path, *args: str) -> list[str]:
    out = subprocess.run([installed("tshark"), "-r", str(path), *CHECKS, *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line]


def fields(path, *names: str, display: str = "") -> list[list[str]]:
    args = ["-T", "fields", "-E", "separator=|"] + [a for n in names for a in ("-e", n)]
    return [line.split("|") for line in tshark(path, *args, *(["-Y", display] if display else []))]


def snmp6(sup, host: str) -> dict:
    """`pktpath netstat -6 -j`: the host's Ip6, Icmp6, Udp6, UdpLite6 and Tcp groups."""
    out = pktpath(sup, "netstat", "-6", "-j", "--on", host)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def addresses_ready(sup, host: str) -> bool:
    out = pktpath(sup, "ip", "-6", "addr", "show", "--on", host)
    return out.returncode == 0 and "2001:db8::" in out.stdout and "tentative" not in out.stdout


@pytest.fixture(scope="module")
def net(default_topology):
    assert wait_for(lambda: addresses_ready(default_topology, "A") and addresses_ready(default_topology, "B"),
                    timeout=20)  # duplicate address detection holds them tentative for a second or two
    yield from with_sockets(default_topology, "A", "B")


@pytest.fixture(scope="module")
def captures(net, tmp_path_factory):
    """One exchange of each kind over IPv6 (and a ping over IPv4 beside it), captured at every point
    of POINTS at once, from before A knows B's link-layer address."""
    sup, a, b = net
    out = tmp_path_factory.mktemp("captures6")
    dumps = {point: subprocess.Popen([sys.executable, "-m", "pktpath.cli", "tcpdump", "-i", point, "-w",
                                      str(out / name), "--base-port", str(sup.base_port), "--timeout", "60"],
                                     stderr=subprocess.PIPE, text=True) for point, name in POINTS.items()}
    for point, dump in dumps.items():
        assert "listening on" in dump.stderr.readline(), point
    with a.socket(protocol=IPPROTO_ICMPV6, family=AF_INET6) as ping6:
        ping6.sendto(b"\x80\x00\x00\x00\x00\x00\x00\x07captured six", (B6, 0))
        assert ping6.recvfrom(100, timeout=10)[0][:1] == b"\x81"
    with b.socket(family=AF_INET6) as rx, a.socket(family=AF_INET6) as tx:
        rx.bind(("::", 7100))
        tx.sendto(b"u" * 100, (B6, 7100))
        tx.sendto(b"f" * 3000, (B6, 7100))  # three fragments on the wire
        assert [len(rx.recvfrom(4000, timeout=10)[0]) for _ in range(2)] == [100, 3000]
        tx.sendto(b"anyone?", (B6, 9))  # B answers with a port unreachable
    with a.socket(protocol=IPPROTO_ICMP) as ping:
        ping.sendto(bytes.fromhex("0800000000070001") + b"captured", ("10.0.0.2", 0))
        ping.recvmsg(timeout=10)
    assert wait_for(lambda: snmp6(sup, "B")["Icmp6"].get("OutType1"), timeout=10)  # the port unreachable
    for dump in dumps.values():
        dump.send_signal(signal.SIGINT)  # tcpdump's Ctrl-C: the file is closed whole
    for point, dump in dumps.items():
        assert dump.wait(20) == 0, (point, dump.stderr.read())
    return {point: out / name for point, name in POINTS.items()}


@pytest.mark.parametrize("point", POINTS)
def test_tshark_finds_nothing_malformed_and_no_bad_checksum(captures, point):
    assert len(tshark(captures[point])) >= 3, point
    assert tshark(captures[point], "-Y", BAD) == []


def test_the_wire_capture_has_ndp_ping_udp_fragments_and_a_port_unreachable(captures):
    path = captures["A:eth0"]
    types = [t for (t,) in fields(path, "icmpv6.type", display="icmpv6 and not icmpv6.type == 143")]
    assert types[:2] == ["135", "136"], "the capture starts with A resolving B"
    assert {"128", "129", "1"} <= set(types)
    frags = fields(path, "ipv6.fraghdr.offset", "ipv6.fraghdr.more", display="ipv6.fraghdr")
    assert frags == [["0", "1"], ["181", "1"], ["362", "0"]]  # 3008 bytes of UDP in 1448 + 1448 + 112
    good = fields(path, "udp.checksum.status", display="udp and not icmpv6 and not ipv6.fraghdr")
    assert good == [["1"], ["1"]], good  # verified over IPv6's pseudo-header (a fragment's cannot be)


def test_layer_captures_hold_raw_ipv6_down_the_stack_and_whole_frames_up_it(captures):
    rows = fields(captures["B:l2"], "frame.packet_flags_direction", "frame.comment", "frame.protocols")
    down = [p for d, c, p in rows if d == "0x00000002"]
    assert down and all(p.startswith(("ipv6:", "ip:")) for p in down), down  # LINKTYPE_IPV6 from L3
    up = [p for d, c, p in rows if d == "0x00000001"]
    assert up and all(p.startswith("eth:") for p in up), up  # __netif_receive_skb_core's whole frames
    assert fields(captures["B:l4"], "udp.length", display="udp.length == 3008") == [["3008"]]  # reassembled
    assert fields(captures["B:l4"], "ipv6.fraghdr", display="ipv6.fraghdr") == []


def lines(text: str) -> list[str]:
    return [line.split(" ", 1)[1] if line[:2].isdigit() else line for line in text.splitlines()]


FILTERS = ["", "ip6", "icmp6", "ip6 host 2001:db8::2", "udp and ip6", "icmp6 and ip6[40] == 135", "ip6 multicast",
           "ip6[6] == 44", "udp port 7100", "not ip6"]


@pytest.mark.parametrize("flags", [[], ["-v"], ["-e"], ["-X"]], ids=["plain", "-v", "-e", "-X"])
def test_pktpath_tcpdump_reads_and_filters_the_wire_capture_line_for_line_as_tcpdump_does(captures, flags):
    tool = installed("tcpdump")
    path = str(captures["A:eth0"])
    for expression in FILTERS:
        words = [expression] if expression else []
        theirs = subprocess.run([tool, "-n", *flags, "-r", path, *words], capture_output=True, text=True, timeout=60)
        ours = cli_here("tcpdump", *flags, "-r", path, *words)
        assert ours.returncode == theirs.returncode == 0, (expression, ours.stderr, theirs.stderr)
        assert lines(ours.stdout) == lines(theirs.stdout), expression
        assert lines(ours.stdout), expression


def test_netstat_6_prints_the_hosts_snmp6_counters_in_net_tools_words(net, captures):
    sup, _, _ = net
    groups = snmp6(sup, "B")
    assert tuple(groups) == NETSTAT6_GROUPS
    assert groups["Icmp6"]["InType128"] >= 1 and groups["Icmp6"]["OutType1"] >= 1 and groups["Ip6"]["ReasmOKs"] >= 1
    assert groups["Udp6"]["NoPorts"] >= 1 and groups["Udp6"]["InDatagrams"] >= 2
    text = pktpath(sup, "netstat", "-s", "-6", "--on", "B")
    assert text.returncode == 0, text.stderr
    printed = text.stdout.splitlines()
    assert printed[0] == "Ip6:" and "Udp6:" in printed and "UdpLite6:" in printed and "Tcp:" in printed
    assert f"    {groups['Udp6']['NoPorts']} packets to unknown port received" in printed
    assert any(line.startswith("        echo requests: ") for line in printed)
    if printed == netstat_s6(groups):  # the counters did not move between the two looks
        assert "Ip:" not in printed  # -6 is IPv6's alone, as net-tools' is
    assert "Ip6:" not in pktpath(sup, "netstat", "-s", "--on", "B").stdout  # and without -6 IPv4's alone


def test_net_tools_netstat_over_the_hosts_counters_as_proc_net_snmp6_prints_what_pktpath_prints(net, captures,
                                                                                                  tmp_path):
    """The live counters rendered as /proc/net/snmp6 and /proc/net/snmp, bind-mounted over /proc in a
    mount namespace of its own, and read by the real `netstat -s -6`."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a mount namespace")
    netstat = installed("netstat")
    sup, _, _ = net
    groups = snmp6(sup, "A")
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    rendered = snmp6_lines({g: v for g, v in groups.items() if g != "Tcp"})
    (proc / "net" / "snmp6").write_text("".join(f"{name:<32}\t{value}\n" for name, value in rendered))
    tcp = groups["Tcp"]
    order = ("RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs "
             "OutSegs RetransSegs InErrs OutRsts InCsumErrors").split()
    (proc / "net" / "snmp").write_text(f"Tcp: {' '.join(order)}\nTcp: {' '.join(str(tcp.get(f, 0)) for f in order)}\n")
    theirs = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             f"mount --bind {proc} /proc && exec {netstat} -s -6"], capture_output=True, text=True,
                            timeout=30, env={**os.environ, "LC_ALL": "C"})
    assert theirs.returncode == 0, theirs.stderr
    assert netstat_s6(groups) == theirs.stdout.splitlines()
    assert any("Icmp6InType" in line for line in theirs.stdout.splitlines())


def test_metrics_carry_ip6_icmp6_and_udp6_under_node_exporters_names(net, captures):
    sup, _, _ = net

    def samples(layer: str) -> dict:
        with urllib.request.urlopen(f"http://{sup.addrs.http('B', layer)}/metrics", timeout=5) as reply:
            families = list(text_string_to_metric_families(reply.read().decode()))
        assert not [s for f in families for s in f.samples if s.labels.get("group") in ("Ip6", "Icmp6", "Udp6")]
        return {s.name: s.value for f in families for s in f.samples if s.labels.get("host") == "B"}

    l3, l4 = samples("l3"), samples("l4")  # none of IPv6's groups left to pktpath_counter_total
    assert l3["node_netstat_Ip6_InReceives"] >= 8 and l3["node_netstat_Ip6_ReasmOKs"] >= 1
    assert l3["node_netstat_Icmp6_InType128"] >= 1 and l3["node_netstat_Icmp6_InEchos"] >= 1
    assert l3["node_netstat_Icmp6_OutDestUnreachs"] >= 1
    assert l4["node_netstat_Udp6_NoPorts"] >= 1
