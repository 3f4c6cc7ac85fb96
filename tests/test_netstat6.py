"""pktpath.tools.netstat's `netstat -s -6` against net-tools' own: hand-built counters; net-tools' netstat
reading a /proc/net/snmp6 rendered from pktpath's counters (bind-mounted over /proc in a mount namespace);
and a network namespace's real /proc/net/snmp6 after IPv6 traffic, printed by the real netstat."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from pktpath.tools.netstat import NETSTAT6_GROUPS, netstat_s, netstat_s6, snmp6_lines

ZERO = {g: {} for g in NETSTAT6_GROUPS}


def test_without_traffic_number_counters_print_and_both_histogram_titles_print_empty():
    """As netstat -s -6 prints a fresh namespace: the output histogram's title comes 8 deep, after
    the (empty) input histogram's, and UdpLite6 has only its title."""
    assert netstat_s6(ZERO) == [
        "Ip6:",
        "    0 total packets received",
        "    0 incoming packets discarded",
        "    0 incoming packets delivered",
        "    0 forwarded",
        "    0 requests sent out",
        "Icmp6:",
        "    0 ICMP messages received",
        "    0 input ICMP message failed",
        "    0 ICMP messages sent",
        "    ICMP input histogram:",
        "        ICMP output histogram:",
        "Udp6:",
        "    0 packets received",
        "    0 packets to unknown port received",
        "    0 packet receive errors",
        "    0 packets sent",
        "UdpLite6:",
        *netstat_s({"Tcp": {}}),
    ]


def test_icmp6_named_types_come_from_their_type_counters_and_numbered_ones_follow_only_when_nonzero():
    lines = dict(snmp6_lines({"Icmp6": {"InType128": 3, "OutType129": 3, "InType200": 1, "OutType1": 0}}))
    assert lines["Icmp6InEchos"] == 3 and lines["Icmp6OutEchoReplies"] == 3 and lines["Icmp6InType200"] == 1
    assert "Icmp6OutType1" not in lines and lines["Icmp6OutDestUnreachs"] == 0
    names = [n for n, _ in snmp6_lines({"Icmp6": {"InType128": 3, "OutType129": 3, "InType200": 1}})]
    assert names[-3:] == ["Icmp6InType128", "Icmp6InType200", "Icmp6OutType129"]  # In 0..255, then Out


def test_fields_net_tools_has_no_prose_for_print_by_name_when_nonzero_and_the_misspelt_entry_is_missed():
    out = netstat_s6({"Ip6": {"InReceives": 5, "InOctets": 400, "InMcastPkts": 2},
                      "Icmp6": {"InMsgs": 2, "OutMsgs": 1, "OutErrors": 1, "InType135": 1, "InType143": 1,
                                "OutType134": 1},
                      "UdpLite6": {"InDatagrams": 4}})
    assert out == [
        "Ip6:",
        "    5 total packets received",
        "    0 incoming packets discarded",
        "    0 incoming packets delivered",
        "    0 forwarded",
        "    0 requests sent out",
        "    2 incoming multicast packets",
        "    Ip6InOctets: 400",
        "Icmp6:",
        "    2 ICMP messages received",
        "    0 input ICMP message failed",
        "    1 ICMP messages sent",
        "    Icmp6OutErrors: 1",
        "    ICMP input histogram:",
        "        neighbour solicits: 1",
        "        Icmp6InMLDv2Reports: 1",
        "        ICMP output histogram:",
        "        Icmp6OutRouterAdvertisements: 1",  # "Icmp6OutRouterAdvertisements " in statistics.c
        "        Icmp6InType135: 1",
        "        Icmp6InType143: 1",
        "        Icmp6OutType134: 1",
        "UdpLite6:",
        "        UdpLite6InDatagrams: 4",  # a group without a table keeps the indent before it
    ]


def parse_snmp6(text: str) -> dict[str, dict[str, int]]:
    """/proc/net/snmp6 ("Ip6InReceives   5") as groups split after the first "6", as pktpath keeps them."""
    groups: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        name, value = line.split()
        six = name.index("6") + 1
        groups.setdefault(name[:six], {})[name[six:]] = int(value)
    return groups


def parse_snmp(text: str) -> dict[str, dict[str, int]]:
    groups: dict[str, dict[str, int]] = {}
    lines = text.splitlines()
    for header, values in zip(lines[::2], lines[1::2]):
        group, names = header.split(":", 1)
        groups.setdefault(group, {}).update(zip(names.split(), map(int, values.split(":", 1)[1].split())))
    return groups


def need_root_and_netstat():
    if os.geteuid() != 0:
        pytest.skip("needs root (a mount namespace, a network namespace)")
    if not shutil.which("netstat") or not shutil.which("unshare"):
        pytest.skip("net-tools' netstat and util-linux's unshare are needed")


def netstat_over(tmp_path, snmp6: list[tuple[str, int]], snmp: str) -> list[str]:
    """The real `netstat -s -6` reading these files as /proc/net/snmp6 and /proc/net/snmp: a directory
    bind-mounted over /proc in a mount namespace of its own (nothing else sees it)."""
    net = tmp_path / "proc" / "net"
    net.mkdir(parents=True)
    (net / "snmp6").write_text("".join(f"{name:<32}\t{value}\n" for name, value in snmp6))
    (net / "snmp").write_text(snmp)
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          f"mount --bind {tmp_path / 'proc'} /proc && exec netstat -s -6"],
                         capture_output=True, text=True, timeout=30, env={**os.environ, "LC_ALL": "C"})
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


TCP_SNMP = ("Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab "
            "InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n"
            "Tcp: 1 200 120000 -1 3 2 1 0 1 40 41 2 0 1 0\n")


def test_net_tools_reading_every_snmp6_field_at_a_distinct_value_prints_what_netstat_s6_prints(tmp_path):
    """Every field of every group nonzero and different, every ICMPv6 type that has a name in and out,
    unnamed types both ways, a pktpath counter the kernel has not: net-tools' lookups and histogram
    indentation, line for line."""
    need_root_and_netstat()
    from pktpath.tools.netstat import ICMP6_TYPE_NAMES, SNMP6_ORDER

    value = iter(range(1, 10_000))
    groups = {g: {f: next(value) for f in fields if not f.startswith(("In", "Out")) or g != "Icmp6"
                  or f in ("InMsgs", "InErrors", "OutMsgs", "OutErrors", "InCsumErrors", "OutRateLimitHost")}
              for g, fields in SNMP6_ORDER.items()}
    for t in [*ICMP6_TYPE_NAMES, 0, 5, 127, 200, 255]:
        groups["Icmp6"][f"InType{t}"] = next(value)
        groups["Icmp6"][f"OutType{t}"] = next(value)
    groups["Ip6"]["PktpathOnly"] = next(value)
    groups["Tcp"] = parse_snmp(TCP_SNMP)["Tcp"]
    theirs = netstat_over(tmp_path, snmp6_lines({g: v for g, v in groups.items() if g != "Tcp"}), TCP_SNMP)
    assert netstat_s6(groups) == theirs
    assert "        neighbour solicits: " + str(groups["Icmp6"]["InType135"]) in theirs  # looked up, found


def test_a_huge_counter_reads_as_strtoull_reads_it(tmp_path):
    need_root_and_netstat()
    groups = {"Ip6": {"InReceives": 2 ** 64 + 5, "InOctets": 2 ** 63}, "Udp6": {"NoPorts": 7}}
    theirs = netstat_over(tmp_path, snmp6_lines(groups), TCP_SNMP)
    assert netstat_s6({**groups, "Tcp": parse_snmp(TCP_SNMP)["Tcp"]}) == theirs


# Run inside the namespace over lo: ping -6, UDP to a closed port (Udp6NoPorts, a port unreachable back),
# UDP and TCP exchanges, and raw ICMPv6 of many types (the kernel fills in the checksum), some it answers.
TRAFFIC6 = r"""
import socket, struct

with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
    udp.sendto(b"x", ("::1", 9))
with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as tx:
    rx.bind(("::1", 0))
    tx.sendto(b"y" * 3000, rx.getsockname())
    rx.recv(4000)
with socket.create_server(("::1", 0), family=socket.AF_INET6) as server:
    with socket.create_connection(server.getsockname()[:2]) as client:
        conn, _ = server.accept()
        client.sendall(b"hello" * 2000)
        got = 0
        while got < 10000:
            got += len(conn.recv(65536))
        conn.close()
with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as raw:
    raw.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    for kind in (1, 2, 3, 4, 128, 130, 131, 132, 133, 134, 135, 136, 137, 143, 150, 200):
        raw.sendto(struct.pack("!BBHI", kind, 0, 0, 0) + bytes(40), ("::1", 0))
"""


@pytest.fixture
def netns():
    need_root_and_netstat()
    name = f"pktpath-netstat6-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_netstat_s6_prints_the_kernels_snmp6_as_net_tools_does(netns):
    def inside(*argv):
        return subprocess.run(["ip", "netns", "exec", netns, *argv], check=True, capture_output=True, text=True,
                              env={**os.environ, "LC_ALL": "C"}).stdout

    inside("ip", "link", "set", "lo", "mtu", "1500")  # UDP's 3000 bytes leave in fragments
    inside("ping", "-6", "-c", "3", "-i", "0.2", "-q", "::1")
    inside(sys.executable, "-c", TRAFFIC6)
    for _ in range(50):  # a late ACK or timer may tick a counter: take a netstat the counters agree with
        before = inside("cat", "/proc/net/snmp6", "/proc/net/snmp")
        printed = inside("netstat", "-s", "-6").splitlines()
        if inside("cat", "/proc/net/snmp6", "/proc/net/snmp") == before:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the namespace's counters kept changing")
    snmp6, ip, snmp = before.partition("\nIp:")
    groups = parse_snmp6(snmp6)
    groups["Tcp"] = parse_snmp(ip.lstrip("\n") + snmp)["Tcp"]
    assert groups["Icmp6"]["InEchos"] >= 3 and groups["Udp6"]["NoPorts"] >= 1 and groups["Ip6"]["ReasmOKs"] >= 1
    assert groups["Icmp6"].get("InType200", 0) >= 1 and groups["Tcp"]["ActiveOpens"] >= 1
    assert [f"{g}{f}" for g, fields in groups.items() if g != "Tcp" for f in fields
            if not f.startswith(("InType", "OutType")) or fields[f]] == [n for n, _ in snmp6_lines(
                {g: v for g, v in groups.items() if g != "Tcp"})]  # the kernel's order, field for field
    assert netstat_s6(groups) == printed


def test_asking_netstat_for_an_snmp6_group_by_name_prints_it_as_netstat_6_does():
    assert netstat_s({"Udp": {"NoPorts": 1}, "Udp6": {"NoPorts": 2}}) == [
        *netstat_s({"Udp": {"NoPorts": 1}}), *netstat_s6({"Udp6": {"NoPorts": 2}})]
    assert netstat_s({"Udp6": {"NoPorts": 2}})[:3] == ["Udp6:", "    0 packets received",
                                                       "    2 packets to unknown port received"]


def test_metrics_name_snmp6_counters_as_node_exporter_splits_proc_net_snmp6():
    """node_exporter's netstat collector reads /proc/net/snmp6 and splits each name after its first
    "6": Ip6InReceives is node_netstat_Ip6_InReceives, Icmp6InType128 node_netstat_Icmp6_InType128.
    Every line pktpath's counters make of /proc/net/snmp6 is a sample of that name and value."""
    from prometheus_client.parser import text_string_to_metric_families

    from pktpath.counters import Mib
    from pktpath.metrics import render

    mib = Mib()
    for group, name, n in [("Ip6", "InReceives", 5), ("Ip6", "OutRequests", 4), ("Icmp6", "InMsgs", 3),
                           ("Icmp6", "InType128", 3), ("Icmp6", "InEchos", 3), ("Icmp6", "OutType129", 3),
                           ("Udp6", "NoPorts", 2), ("Ip", "InReceives", 7)]:
        mib.inc(group, name, n)
    text = render("B", "l3", mib.snapshot())
    samples = {(s.name, s.labels["host"]): s.value for f in text_string_to_metric_families(text) for s in f.samples}
    counted = mib.snapshot()
    for line, value in snmp6_lines({g: v for g, v in counted.items() if g in ("Ip6", "Icmp6", "Udp6")}):
        six = line.index("6") + 1
        metric = f"node_netstat_{line[:six]}_{line[six:]}"
        if line[six:] in counted.get(line[:six], {}):
            assert samples[metric, "B"] == value, metric
    assert samples["node_netstat_Ip_InReceives", "B"] == 7 and samples["node_netstat_Ip6_InReceives", "B"] == 5
    assert not any(name.startswith("pktpath_counter") for name, _ in samples)  # none left to the catch-all
