"""IPv6 sockets as the tools see them on a running topology: `pktpath ss -4`/`-6`/`-f` choose
by the socket's family as iproute2's ss does (the comparison with Linux's ss, line by line, is
tests/test_ss_family.py), and `pktpath tcpdump -v` shows a TCP socket's IPV6_TCLASS and
IPV6_UNICAST_HOPS in each segment's header as tcpdump prints them (`class 0xb8`, `hlim 5`),
as Linux 6.18's segments showed them."""

import re
import subprocess
import sys

import pytest

from pktpath.client import AF_INET6, IPV6_UNICAST_HOPS, IPV6_V6ONLY, SOCK_STREAM

from e2ekit import cli_here, ipv6_ready, listener, with_sockets

pytestmark = pytest.mark.slow
SOL_IPV6, IPV6_TCLASS = 41, 67


@pytest.fixture(scope="module")
def net(default_topology):
    yield from with_sockets(default_topology, "A", "B")


def ss(sup, *words: str) -> list[str]:
    out = cli_here("ss", *words, "--on", "A", "--base-port", str(sup.base_port))
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[1:]


def test_ss_shows_a_dual_stack_listener_and_its_ipv4_connection_under_6_and_not_under_4(net):
    sup, a, b = net
    assert ipv6_ready(sup, "A", "B", timeout=20)
    with a.socket(SOCK_STREAM, family=AF_INET6) as dual, listener(a, 9401), \
            a.socket(SOCK_STREAM, family=AF_INET6) as v6only, a.socket(family=AF_INET6) as udp6, \
            a.socket() as udp4, b.socket(SOCK_STREAM) as c4, b.socket(SOCK_STREAM, family=AF_INET6) as c6:
        dual.bind(("::", 9400))
        dual.listen(4)
        v6only.setsockopt(SOL_IPV6, IPV6_V6ONLY, 1)
        v6only.bind(("::", 9402))
        v6only.listen(4)
        udp6.bind(("::", 9500))
        udp4.bind(("0.0.0.0", 9501))
        c4.connect(("10.0.0.1", 9400), timeout=20)
        c6.connect(("2001:db8::1", 9402), timeout=20)
        mapped, _ = dual.accept(timeout=20)
        native, _ = v6only.accept(timeout=20)
        with mapped, native:
            ipv4, ipv6 = " ".join(ss(sup, "-tan", "-4")), " ".join(ss(sup, "-tan", "-6"))
            assert "0.0.0.0:9401" in ipv4 and "*:9400" not in ipv4 and "[::ffff:10.0.0.2]" not in ipv4
            assert "*:9400" in ipv6 and "[::]:9402" in ipv6 and "0.0.0.0:9401" not in ipv6
            assert "[::ffff:10.0.0.1]:9400" in ipv6 and "[2001:db8::1]:9402" in ipv6  # the two accepted
            assert ss(sup, "-tan", "-f", "inet6") == ss(sup, "-tan", "-4", "-6")  # the last family named
            assert [line.split()[3] for line in ss(sup, "-uan", "-6") if ":950" in line] == ["*:9500"]
            assert [line.split()[3] for line in ss(sup, "-uan", "-4") if ":950" in line] == ["0.0.0.0:9501"]
            both = ss(sup, "-an", "-6")
            assert both[0].split()[0] in ("udp", "tcp") and any(line.startswith("tcp") for line in both)


def test_tcpdump_v_shows_each_sides_traffic_class_and_hop_limit_in_its_segments(net):
    sup, a, b = net
    assert ipv6_ready(sup, "A", "B", timeout=20)
    dump = subprocess.Popen([sys.executable, "-m", "pktpath.cli", "tcpdump", "-i", "A:eth0", "-v", "-c", "4",
                             "--base-port", str(sup.base_port), "--timeout", "60", "tcp", "port", "9403"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on" in dump.stderr.readline()
        with b.socket(SOCK_STREAM, family=AF_INET6) as srv, a.socket(SOCK_STREAM, family=AF_INET6) as cli:
            srv.setsockopt(SOL_IPV6, IPV6_TCLASS, 0x29)  # its ECN field is TCP's: 0x28
            srv.bind(("::", 9403))
            srv.listen(4)
            cli.setsockopt(SOL_IPV6, IPV6_TCLASS, 0xB8)  # DSCP EF
            cli.setsockopt(SOL_IPV6, IPV6_UNICAST_HOPS, 5)
            cli.connect(("2001:db8::2", 9403), timeout=20)
            conn, _ = srv.accept(timeout=20)
            with conn:
                cli.sendall(b"ef" * 50)
                assert conn.recv(100, timeout=10) == b"ef" * 50
                assert conn.getsockopt(SOL_IPV6, IPV6_TCLASS) == 0x28  # the listener's, inherited
        out, _ = dump.communicate(timeout=30)
    finally:
        dump.kill()
    headers = [line for line in out.splitlines() if " IP6 (" in line]
    assert len(headers) == 4, out
    source = [re.search(r"\) ([0-9a-f:]+)\.\d+ > ", h).group(1) for h in headers]
    from_a = [h for h, src in zip(headers, source) if src == "2001:db8::1"]
    from_b = [h for h, src in zip(headers, source) if src == "2001:db8::2"]
    assert len(from_a) == 3 and all("class 0xb8," in h and "hlim 5," in h for h in from_a), out
    assert len(from_b) == 1 and "class 0x28," in from_b[0] and "hlim 64," in from_b[0], out  # the SYN-ACK
