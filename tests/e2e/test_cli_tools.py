"""The command-line tools as a Linux person runs them (issue #17), against a running topology:
ping(8)'s pacing, Ctrl-C and quiet output."""

import re
import signal
import subprocess
import sys
import time

import pytest

from e2ekit import cli_here

pytestmark = pytest.mark.slow


def pktpath(sup, *words: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pktpath.cli", *words, "--base-port", str(sup.base_port)],
                          capture_output=True, text=True, timeout=timeout)


def here(sup, *words: str) -> subprocess.CompletedProcess:
    """pktpath(), in this process: for the query commands a test gives dozens of times."""
    return cli_here(*words, "--base-port", str(sup.base_port))


def test_ping_sends_every_interval_whatever_the_replies_do(lossy_topology):
    """Before: it waited for each reply, and 10 pings at -i 0.2 over the lossy link took 5.9 s."""
    started = time.monotonic()
    out = pktpath(lossy_topology, "ping", "10.0.0.2", "-c", "10", "-i", "0.2", "-W", "1")
    took = time.monotonic() - started
    assert "10 packets transmitted" in out.stdout, out.stdout + out.stderr
    assert took < 4.5, took  # 9 intervals of 0.2 s, at most 1 s for the last replies, and start-up
    ms = int(re.search(r"time (\d+)ms", out.stdout).group(1))
    assert 1700 <= ms <= 3200, ms
    replies = [int(m) for m in re.findall(r"icmp_seq=(\d+) ttl", out.stdout)]
    assert replies and len(replies) == len(set(replies)) and out.returncode == 0


def test_ping_runs_until_ctrl_c_and_then_says_its_statistics(lossy_topology):
    proc = subprocess.Popen([sys.executable, "-m", "pktpath.cli", "ping", "10.0.0.2", "-i", "0.2", "--base-port",
                             str(lossy_topology.base_port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        lines = [proc.stdout.readline()]
        while sum("bytes from" in line for line in lines) < 3:
            lines.append(proc.stdout.readline())
            assert lines[-1], lines
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=20)[0]
    finally:
        proc.kill()
    assert proc.returncode == 0, rest
    assert "--- 10.0.0.2 ping statistics ---" in rest and "packets transmitted" in rest and "rtt min/avg/max" in rest


def test_ping_q_prints_only_the_statistics(lossy_topology):
    out = pktpath(lossy_topology, "ping", "10.0.0.2", "-c", "3", "-i", "0.2", "-W", "1", "-q")
    assert out.stdout.splitlines()[0].startswith("PING 10.0.0.2")
    assert "bytes from" not in out.stdout and "3 packets transmitted" in out.stdout


def test_traceroute_through_the_router_names_each_hop_then_the_destination(router_topology):
    out = pktpath(router_topology, "traceroute", "10.0.2.1", "-w", "2")
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stdout + out.stderr
    assert lines[0] == "traceroute to 10.0.2.1 (10.0.2.1), 30 hops max, 60 byte packets"
    assert re.fullmatch(r" 1  10\.0\.1\.254(  \d+\.\d{3} ms){3}", lines[1]), lines[1]  # R: time exceeded
    assert re.fullmatch(r" 2  10\.0\.2\.1(  \d+\.\d{3} ms){3}", lines[2]), lines[2]  # B: port unreachable
    assert len(lines) == 3


def test_traceroute_marks_an_unreachable_network_and_stops_there(router_topology):
    out = pktpath(router_topology, "traceroute", "10.0.9.9", "-q", "2", "-w", "1")
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r" 1  10\.0\.1\.254  \d+\.\d{3} ms !N  \d+\.\d{3} ms !N", out.stdout.splitlines()[1])
    assert len(out.stdout.splitlines()) == 2  # R has no route: nothing further to try


def test_traceroute_prints_a_star_for_a_probe_nobody_answers(router_topology):
    out = pktpath(router_topology, "traceroute", "10.0.2.9", "-m", "2", "-q", "1", "-w", "0.5")
    assert out.stdout.splitlines()[2] == " 2  *"  # no such host behind R: silence within the wait


def test_send_says_the_source_the_route_chose_and_recv_prints_text_as_text(lossy_topology):
    recv = subprocess.Popen([sys.executable, "-m", "pktpath.cli", "recv", "9100", "--on", "B", "-c", "1", "--timeout",
                             "20", "--base-port", str(lossy_topology.base_port)], stdout=subprocess.PIPE, text=True)
    time.sleep(2)  # bound by then (a process's first call attaches it)
    sent = pktpath(lossy_topology, "send", "10.0.0.2", "9100", "--data", "héllo", "-c", "3", "-i", "0.1", "--on", "A")
    assert re.search(r"sent 3 datagram\(s\) of 6 bytes from 10\.0\.0\.1:\d+ to 10\.0\.0\.2:9100", sent.stdout), sent
    out = recv.communicate(timeout=30)[0].splitlines()
    assert re.fullmatch(r"6 bytes from 10\.0\.0\.1:\d+", out[0]) and out[1] == "héllo", out
    hexed = pktpath(lossy_topology, "recv", "9101", "--on", "B", "-x", "--timeout", "0.5")
    assert hexed.returncode == 1  # nothing came


# -- ip, next to the kernel's own -------------------------------------------------------------
@pytest.fixture(scope="module")
def kernel_a():
    """Host A of the lossy topology as the kernel would be set up: a namespace with eth0
    (a veth), its MAC, MTU and addresses (brd +; the IPv6 one before the link is up, so the
    link-local one comes after it), the peer B's likewise, one ping between, and DAD done."""
    import shutil

    if not shutil.which("ip"):
        pytest.fail("iproute2 is missing (.ci/run installs it)")
    a, b = "pktpath-ipa", "pktpath-ipb"
    steps = [["ip", "netns", "add", a], ["ip", "netns", "add", b],
             ["ip", "link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "eth0", "netns", b]]
    for ns, mac, addr, addr6 in ((a, "02:00:00:00:00:0a", "10.0.0.1/24", "2001:db8::1/64"),
                                 (b, "02:00:00:00:00:0b", "10.0.0.2/24", "2001:db8::2/64")):
        steps += [["ip", "-n", ns, "link", "set", "eth0", "address", mac, "mtu", "1500"],
                  ["ip", "-n", ns, "addr", "add", addr, "brd", "+", "dev", "eth0"],
                  ["ip", "-n", ns, "addr", "add", addr6, "dev", "eth0"],
                  ["ip", "-n", ns, "link", "set", "eth0", "up"]]
    steps.append(["ip", "netns", "exec", a, "ping", "-c", "1", "-W", "5", "10.0.0.2"])
    for ns in (a, b):  # what a killed run may have left
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while subprocess.run(["ip", "-n", a, "-6", "addr", "show", "tentative"], capture_output=True, text=True,
                             timeout=30).stdout and time.monotonic() < deadline:
            time.sleep(0.2)  # DAD: about a second, after which the addresses lose "tentative"
        yield lambda *words: subprocess.run(["ip", "-n", a, *words], check=True, capture_output=True, text=True,
                                            timeout=30).stdout
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _kernel_only(line: str) -> str:
    """What a veth in a namespace says that pktpath's NIC has no cause to: its peer's index
    and namespace, no qdisc of its own; trailing blanks."""
    line = re.sub(r"eth0@if\d+", "eth0", line).replace(" link-netns pktpath-ipb", "")
    return line.replace("qdisc noqueue", "qdisc pfifo_fast").rstrip()


def test_ip_prints_routes_neighbours_addresses_and_links_as_the_kernels_ip_does(lossy_topology, kernel_a):
    assert pktpath(lossy_topology, "ping", "10.0.0.2", "-c", "5", "-i", "0.2", "-W", "2").returncode == 0

    def ours(*words):
        out = here(lossy_topology, "ip", *words, "--on", "A")
        assert out.returncode == 0, out.stderr
        return [line.rstrip() for line in out.stdout.splitlines()]

    def theirs(*words):
        lines = [_kernel_only(line) for line in kernel_a(*words).splitlines()]
        keep, skip = [], False
        for line in lines:  # the kernel's loopback device: pktpath models none
            if re.match(r"^\d+: ", line):
                skip = bool(re.match(r"^\d+: lo:", line))
            if not skip:
                keep.append(line)
        return [re.sub(r"^2: ", "1: ", line) for line in keep]  # pktpath has no lo to be number 1

    assert ours("route") == theirs("route")
    assert ours("r", "get", "10.0.0.2") == theirs("route", "get", "10.0.0.2")
    assert ours("addr") == theirs("addr")
    addr6 = ours("-6", "addr")  # issue 19: A's IPv6 addresses, its own and the link-local one from its MAC
    assert [line.strip() for line in addr6[1::2]] == ["inet6 2001:db8::1/64 scope global",
                                                      "inet6 fe80::ff:fe00:a/64 scope link"], addr6
    assert addr6 == theirs("-6", "addr")
    assert ours("-4", "addr") == theirs("-4", "addr")
    assert ours("-6", "route") == theirs("-6", "route")
    assert ours("link") == theirs("link")
    strip_state = [re.sub(r" (REACHABLE|STALE|DELAY|PROBE)$", "", line) for line in ours("neigh", "show")]
    assert strip_state == [re.sub(r" (REACHABLE|STALE|DELAY|PROBE)$", "", line) for line in theirs("neigh", "show")]
    stats = ours("-s", "link")
    kstats = theirs("-s", "link")
    assert [line.split() for line in stats[2::2]] == [line.split() for line in kstats[2::2]]  # the same headings
    assert [len(line) for line in stats[2:]] == [len(line) for line in kstats[2:]] or all(
        len(line.split()) == 6 for line in stats[3::2])  # columns as wide, unless the numbers are wider
    import json

    routes = json.loads(pktpath(lossy_topology, "ip", "-j", "route", "--on", "A").stdout)
    assert routes == json.loads(kernel_a("-j", "route"))
    routes6 = json.loads(pktpath(lossy_topology, "ip", "-j", "-6", "route", "--on", "A").stdout)
    assert routes6 == json.loads(kernel_a("-j", "-6", "route"))


KERNEL_SERVER = """
import socket, sys, time
l = socket.socket(); l.bind(("0.0.0.0", 9300)); l.listen(8)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 9301))
s, _ = l.accept(); print("ready", flush=True); time.sleep(60)
"""
KERNEL_CLIENT = """
import socket, time
c = socket.create_connection(("10.0.0.1", 9300)); c.send(b"x" * 5); time.sleep(60)
"""


def test_ss_lists_and_filters_sockets_as_the_kernels_ss_does(lossy_topology, kernel_a):
    """The same sockets on pktpath's A and on the kernel's: a listener on 9300 with 5 unread
    bytes on its accepted connection, a UDP socket on 9301; ss's columns and words alike
    (but for the client's ephemeral port)."""
    import shutil

    from pktpath.client import SOCK_STREAM, SocketApi

    if not shutil.which("ss"):
        pytest.fail("iproute2's ss is missing (.ci/run installs iproute2)")
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    server = subprocess.Popen(["ip", "netns", "exec", "pktpath-ipa", python, "-c", KERNEL_SERVER],
                              stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    client = subprocess.Popen(["ip", "netns", "exec", "pktpath-ipb", python, "-c", KERNEL_CLIENT])
    sup = lossy_topology
    a, b = SocketApi(sup.addrs.target("A", "socket")), SocketApi(sup.addrs.target("B", "socket"))
    try:
        assert server.stdout.readline().strip() == "ready"
        listener = a.socket(SOCK_STREAM)
        listener.bind(("0.0.0.0", 9300))
        listener.listen(8)
        udp = a.socket()
        udp.bind(("0.0.0.0", 9301))
        conn = b.socket(SOCK_STREAM)
        conn.connect(("10.0.0.1", 9300), timeout=20)
        conn.sendall(b"x" * 5)
        accepted, _ = listener.accept(timeout=20)
        time.sleep(1)  # the 5 bytes are in (over the lossy link, perhaps retransmitted)

        def words(lines: str) -> list[list[str]]:
            return [re.sub(r"10\.0\.0\.2:\d+", "10.0.0.2:EPH", line).split() for line in lines.splitlines()]

        for flags in (["-tan"], ["-uan"], ["-an"], ["-tln"], ["-tn"], ["-Htn"],
                      ["-tn", "state", "established", "( dport = :9300 or sport = :9300 )"],
                      ["-an", "sport = :9301"], ["-tlmn"], ["-ulmn"]):  # -m: idle sockets' memory, the same
            kernel = subprocess.run(["ip", "netns", "exec", "pktpath-ipa", "ss", *flags], capture_output=True,
                                    text=True, timeout=30).stdout
            kernel = "\n".join(line for line in kernel.splitlines()
                               if not re.match(r"^(u_|nl|p_|raw|icmp6|udp6|tcp6|v_|xdp|mptcp)", line))
            ours = here(sup, "ss", *flags, "--on", "A")
            assert ours.returncode == 0, ours.stderr
            assert words(ours.stdout) == words(kernel), flags
        established = pktpath(sup, "ss", "-tmn", "--on", "A").stdout.splitlines()
        memory = re.fullmatch(r"\t skmem:\(r(\d+),rb(\d+),t0,tb(\d+),f0,w0,o0,bl0,d0\)", established[2])
        assert memory, established  # the 5 unread bytes, charged their skb's truesize as the kernel does
        assert int(memory[1]) > 5 and int(memory[2]) >= 131072 and int(memory[3]) >= 16384, established
    finally:
        server.kill()
        client.kill()
        a.close()
        b.close()


RULES = [["-A", "INPUT", "-p", "udp", "--dport", "9999", "-j", "DROP"],
         ["-I", "INPUT", "1", "-s", "10.0.0.2/32", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
         ["-A", "OUTPUT", "-d", "10.0.0.0/24", "-p", "icmp", "-j", "DROP"],
         ["-A", "OUTPUT", "-s", "10.0.0.9/24", "-p", "41", "-j", "DROP"],  # listed 10.0.0.0/24, ipv6
         ["-A", "FORWARD", "-j", "DROP"], ["-P", "FORWARD", "DROP"],
         ["-A", "INPUT", "-p", "udp", "--sport", "53", "-j", "ACCEPT"],
         ["-I", "INPUT", "-p", "udp", "--sport", "7", "--dport", "7", "-j", "ACCEPT"],
         ["-D", "INPUT", "4"], ["-A", "INPUT", "-s", "10.0.0.9", "-j", "DROP"],
         ["-D", "INPUT", "-s", "10.0.0.9", "-j", "DROP"], ["-Z"]]


def test_iptables_changes_and_lists_chains_as_the_kernels_iptables_does(lossy_topology, kernel_a):
    """The same commands given to pktpath's A and to the kernel's iptables in A's namespace:
    every listing alike byte for byte (counters aside: the two hosts see different traffic), and
    so are the refusals, in iptables' words and exit codes."""
    def ours(*words, ok=True):
        out = cli_here("iptables", *words, "--on", "A", "--base-port", str(lossy_topology.base_port))
        assert not ok or out.returncode == 0, (words, out.stderr)
        return out

    def theirs(*words, ok=True):
        return subprocess.run(["ip", "netns", "exec", "pktpath-ipa", "iptables", *words], check=ok,
                              capture_output=True, text=True, timeout=60)

    def same_counts(text: str) -> list[str]:  # counters blanked
        text = re.sub(r"\d+ packets, \d+ bytes", "N packets, N bytes", text)
        return [re.sub(r"^(\d+\s+)?\s*\d+[KMGT]?\s+\d+[KMGT]? ", r"\1N N ", line) for line in text.splitlines()]

    try:
        for rule in RULES:
            assert ours(*rule).stdout == theirs(*rule).stdout == ""
        for flags in (["-L", "-n"], ["-L"], ["-L", "INPUT", "-n", "--line-numbers"], ["-nL", "FORWARD"],
                      ["-L", "INPUT", "2"]):
            assert ours(*flags).stdout == theirs(*flags).stdout, flags
        for flags in (["-L", "-v", "-n"], ["-L", "-v", "-n", "-x"], ["-nvL", "INPUT", "--line-numbers"], ["-vL"]):
            assert same_counts(ours(*flags).stdout) == same_counts(theirs(*flags).stdout), flags
        for words in (["-D", "INPUT", "9"], ["-I", "INPUT", "9", "-j", "DROP"], ["-P", "INPUT", "FOO"],
                      ["-L", "FOO"], ["-A", "INPUT", "-s", "2001:db8::1", "-j", "DROP"],
                      ["-A", "INPUT", "-p", "tcp", "--dport", "70000", "-j", "DROP"], ["-D", "INPUT", "1", "-n"]):
            mine, kernel = ours(*words, ok=False), theirs(*words, ok=False)
            assert (mine.returncode, mine.stderr) == (kernel.returncode,
                                                      kernel.stderr.replace("(nf_tables)", "(pktpath)")), words
        chains = [line.split()[1] for line in ours("-t", "mangle", "-nL").stdout.splitlines()
                  if line.startswith("Chain")]
        assert chains == ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]  # (one chain per hook)
    finally:
        for cmd in (["-F"], ["-P", "FORWARD", "ACCEPT"]):
            ours(*cmd)
            theirs(*cmd)


def test_iptables_policy_drop_stops_a_ping_and_counts_it_and_bad_commands_say_what_iptables_says(lossy_topology):
    sup = lossy_topology

    def iptables(*words):
        return cli_here("iptables", *words, "--on", "B", "--base-port", str(sup.base_port))

    try:
        assert iptables("-P", "INPUT", "DROP").returncode == 0
        # four: the link loses 5 %, and the policy must have counted at least two
        assert pktpath(sup, "ping", "10.0.0.2", "-c", "4", "-i", "0.2", "-W", "1").returncode == 1
        policy = iptables("-L", "INPUT", "-v", "-n").stdout.splitlines()[0]
        assert re.fullmatch(r"Chain INPUT \(policy DROP ([2-9]|\d\d+) packets, \d+ bytes\)", policy), policy
    finally:
        assert iptables("-P", "INPUT", "ACCEPT").returncode == 0
    # answered again (-W 5: a CI machine under load has been seen to take over 2 s)
    assert pktpath(sup, "ping", "10.0.0.2", "-c", "3", "-i", "0.2", "-W", "5").returncode == 0
    missing = iptables("-D", "INPUT", "-p", "tcp", "--dport", "1", "-j", "DROP")
    assert missing.returncode == 1 and "Bad rule (does a matching rule exist in that chain?)" in missing.stderr
    assert "No chain/target/match by that name" in iptables("-A", "PREROUTING", "-j", "DROP").stderr
    assert "Index of insertion too big" in iptables("-I", "INPUT", "5", "-j", "DROP").stderr
    assert iptables("-t", "nat", "-L").returncode == 3


def test_tc_netem_changes_a_link_while_it_runs_and_the_pings_show_it(lossy_topology):
    """`tc qdisc change dev eth0 root netem delay 60ms` on A: A's echo requests leave 60 ms
    later, so the round trip grows by that; `del` gives pfifo_fast back."""
    sup = lossy_topology

    def tc(*words, host="A"):
        out = subprocess.run([sys.executable, "-m", "pktpath.cli", "tc", *words, "--on", host, "--base-port",
                              str(sup.base_port)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    def avg_rtt() -> float:
        out = pktpath(sup, "ping", "10.0.0.2", "-c", "5", "-i", "0.2", "-W", "3", "--on", "A")
        return float(re.search(r"rtt min/avg/max/mdev = [\d.]+/([\d.]+)/", out.stdout).group(1))

    assert tc("qdisc", "show") == ["qdisc netem 8001: dev eth0 root refcnt 2 limit 1000 loss 5% duplicate 5% "
                                   "reorder 5%"]  # the lossy topology's link
    before = avg_rtt()
    try:
        assert tc("qdisc", "change", "dev", "eth0", "root", "netem", "delay", "60ms") == []
        assert tc("qdisc", "show", "dev", "eth0") == ["qdisc netem 8001: root refcnt 2 limit 1000 delay 60ms"]
        after = avg_rtt()
        assert after - before >= 50, (before, after)
        tc("qdisc", "del", "dev", "eth0", "root")
        assert tc("qdisc", "show") == ["qdisc pfifo_fast 0: dev eth0 root refcnt 2 bands 3 priomap 1 2 2 2 1 2 0 0 "
                                       "1 1 1 1 1 1 1 1"]
        assert avg_rtt() < after - 40
        assert tc("qdisc", "replace", "dev", "eth0", "root", "fq") == []
        assert tc("qdisc", "show", "dev", "eth0") == [
            "qdisc fq 8001: root refcnt 2 limit 10000p flow_limit 100p buckets 1024 orphan_mask 1023 quantum 3028b "
            "initial_quantum 15140b low_rate_threshold 550Kbit refill_delay 40ms timer_slack 10us horizon 10s "
            "horizon_drop"]
        assert avg_rtt() < after - 40  # fq paces sockets that pace (TCP's), not echo replies
    finally:
        tc("qdisc", "replace", "dev", "eth0", "root", "netem", "loss", "5%", "duplicate", "5%", "reorder", "5%")
    bad = subprocess.run([sys.executable, "-m", "pktpath.cli", "tc", "qdisc", "change", "dev", "eth0", "root", "netem",
                          "loss", "150%", "--on", "A", "--base-port", str(sup.base_port)], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "not between 0% and 100%" in bad.stderr


def test_ethtool_shows_settings_as_a_veths_and_turns_gro_off_and_on_for_real(lossy_topology, kernel_a):
    from e2ekit import counter, stub, tcp_connection

    from pktpath.client import SocketApi
    from pktpath.rpc import softirq_pb2_grpc

    sup = lossy_topology

    def ethtool(*words):
        return subprocess.run([sys.executable, "-m", "pktpath.cli", "ethtool", *words, "--base-port",
                               str(sup.base_port)], capture_output=True, text=True, timeout=60)

    ours = ethtool("A:eth0").stdout.splitlines()
    kernel = subprocess.run(["ip", "netns", "exec", "pktpath-ipa", "ethtool", "eth0"], capture_output=True, text=True,
                            timeout=30).stdout.splitlines()
    assert [line.split(":")[0] for line in ours] == [line.split(":")[0] for line in kernel]  # the same settings
    assert "\tLink detected: yes" in ours and "\tSpeed: Unknown!" in ours  # a virtual wire has no speed of its own
    softirq_b = stub(sup, "B", "softirq", softirq_pb2_grpc.SoftirqStub)

    def bulk_merged() -> int:
        before = counter(softirq_b, "Gro", "Segments")
        with SocketApi(sup.addrs.target("A", "socket")) as a, SocketApi(sup.addrs.target("B", "socket")) as b, \
                tcp_connection(a, b, "10.0.0.2", 9400) as (_, tx, rx):
            import threading

            sender = threading.Thread(target=tx.sendall, args=(b"g" * 400_000,))  # the reader reads meanwhile
            sender.start()
            got = 0
            while got < 400_000:
                got += len(rx.recv(1 << 20, timeout=30))
            sender.join(30)
        return counter(softirq_b, "Gro", "Segments") - before

    try:
        assert ethtool("-K", "B:eth0", "gro", "off").returncode == 0
        assert "generic-receive-offload: off" in ethtool("-k", "B:eth0").stdout
        assert bulk_merged() == 0
    finally:
        assert ethtool("-K", "B:eth0", "gro", "on").returncode == 0
    assert bulk_merged() > 0
    refused = ethtool("-K", "B:eth0", "tso", "on")
    assert refused.returncode == 1 and "tcp-segmentation-offload: off [requested on]" in refused.stderr
    assert "Could not change any device features" in refused.stderr


def test_query_commands_answer_json_that_parses_with_stable_field_names(lossy_topology):
    import json

    sup = lossy_topology

    def j(*words):
        out = here(sup, *words)
        assert out.returncode == 0, (words, out.stderr)
        return json.loads(out.stdout)

    assert pktpath(sup, "ping", "10.0.0.2", "-c", "5", "-i", "0.2", "-W", "2").returncode == 0  # something to count
    listening = j("ss", "-tlj", "--on", "B")
    assert all(set(s) >= {"netid", "state", "recv_q", "send_q", "local", "peer", "sk", "users"} for s in listening)
    assert isinstance(j("ss", "-aj", "--on", "A"), list)
    netstat = j("netstat", "-j", "--on", "A")
    assert {"Ip", "IpExt", "Icmp", "Tcp", "TcpExt", "Udp", "Drops"} <= set(netstat) and netstat["Ip"]["InReceives"] > 0
    assert j("netstat", "Udp", "-j", "--on", "A").keys() == {"Udp"}
    (qdisc,) = j("tc", "-j", "qdisc", "show", "--on", "A")
    assert qdisc["kind"] == "netem" and qdisc["dev"] == "eth0" and qdisc["options"]["loss"] == 0.05
    dev = j("ifconfig", "-j", "--on", "A")["eth0"]
    assert dev["rx_packets"] > 0 and isinstance(dev["tx_bytes"], int)
    routes = j("ip", "-j", "route", "--on", "A")
    assert routes == [{"dst": "10.0.0.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link",
                       "prefsrc": "10.0.0.1", "flags": []}]
    status = j("status", "-j")
    assert status["base_port"] == sup.base_port and len(status["services"]) == 13
    assert {s["state"] for s in status["services"]} == {"serving"}


def test_netstat_says_the_counters_in_net_tools_words(lossy_topology):
    """The prose and layout are checked against net-tools' netstat in tests/test_netstat.py;
    here, that a running host's counters come out in them."""
    import json

    sup = lossy_topology
    assert pktpath(sup, "ping", "10.0.0.2", "-c", "3", "-i", "0.2", "-W", "2").returncode == 0
    counters = json.loads(pktpath(sup, "netstat", "-j", "--on", "A").stdout)
    text = pktpath(sup, "netstat", "-s", "--on", "A").stdout
    assert f"Ip:\n    Forwarding: 2\n    {counters['Ip']['InReceives']} total packets received\n" in text
    assert f"    {counters['Icmp']['OutMsgs']} ICMP messages sent\n" in text
    assert f"    ICMP output histogram:\n        echo requests: {counters['Icmp']['OutEchos']}\n" in text
    assert f"IcmpMsg:\n        InType0: {counters['IcmpMsg']['InType0']}\n" in text  # echo replies, by type
    assert "\nUdp:\n    0 packets received\n" in text and "\nTcpExt:\n" in text  # the kernel's groups, always


def test_tracepath_finds_the_path_mtu_behind_the_router(router_topology):
    out = pktpath(router_topology, "tracepath", "10.0.2.1")
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stdout + out.stderr
    assert lines[0] == " 1?: [LOCALHOST]                      pmtu 1500"
    assert re.fullmatch(r" 1:  10\.0\.1\.254 {42}\s*\d+\.\d{3}ms", lines[1]), lines[1]
    assert re.fullmatch(r" 2:  10\.0\.1\.254 +\d+\.\d{3}ms pmtu 1280", lines[2]), lines  # R's eth1 has MTU 1280
    assert re.fullmatch(r" 2:  10\.0\.2\.1 +\d+\.\d{3}ms reached", lines[3]), lines
    assert lines[4] == "     Resume: pmtu 1280 hops 2"
