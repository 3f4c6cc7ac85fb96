"""A single packet walked through the sk_buff model and the wire codecs, in one process.

`pktpath demo` builds a UDP datagram the way the TX path does (copy from user
into a new skb, then skb_push each header into reserved headroom), "transmits"
it, receives it the way the RX path does (DMA into a ring buffer's skb, then
skb_pull each header after verifying it) and copies it to the user. It prints
each step and the copies that happened: the same story the layer services tell
across processes, told here without them.
"""

from pktpath import skbuff as s
from pktpath.pb import skbuff_pb2 as pb
from pktpath.wire import EthHdr, IcmpHdr, IpHdr, TcpHdr, UdpHdr, WireError
from pktpath.wire.addr import ip_from_str, ip_to_str, mac_from_str, mac_to_str
from pktpath.wire.arp import ArpHdr
from pktpath.wire.ethernet import ETH_P_ARP, ETH_P_IP
from pktpath.wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP

HOST_A, HOST_B = "A", "B"
MAC_A, MAC_B = mac_from_str("02:00:00:00:00:0a"), mac_from_str("02:00:00:00:00:0b")
IP_A, IP_B = ip_from_str("10.0.0.1"), ip_from_str("10.0.0.2")
SPORT, DPORT = 40000, 5353

_KIND = {v: k for k, v in pb.EventKind.items()}
_LAYER = {v: k.removeprefix("LAYER_").lower() for k, v in pb.Layer.items()}


def _geometry(skb: s.SkBuff) -> str:
    return f"headroom {skb.headroom():>3}  len {skb.len:>5}  tailroom {skb.tailroom():>3}"


def demo(payload: bytes = b"x" * 100) -> list[str]:
    out = [f"One UDP datagram of {len(payload)} bytes, {ip_to_str(IP_A)}:{SPORT} -> {ip_to_str(IP_B)}:{DPORT}", ""]
    step = out.append

    # -- host A, send path -------------------------------------------------
    step("host A, send path")
    udph = UdpHdr(SPORT, DPORT)
    iph = IpHdr(IP_A, IP_B, IPPROTO_UDP, id=1)
    skb = s.alloc_skb(s.MAX_HEADER + len(payload), origin_host=HOST_A)
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, payload)
    skb.record(s.COPY, pb.LAYER_SOCKET, HOST_A, "udp_sendmsg", len(payload), copy_from="user", copy_to="skb")
    step(f"  socket  udp_sendmsg        copy user -> skb          {_geometry(skb)}")
    s.skb_push_data(skb, udph.to_bytes(payload, IP_A, IP_B))
    s.skb_reset_transport_header(skb)
    step(f"  l4      udp_send_skb       skb_push udp header (8)   {_geometry(skb)}")
    s.skb_push_data(skb, iph.to_bytes(skb.len))
    s.skb_reset_network_header(skb)
    step(f"  l3      ip_send_skb        skb_push ip header (20)   {_geometry(skb)}")
    s.skb_push_data(skb, EthHdr(MAC_B, MAC_A, ETH_P_IP).to_bytes())
    s.skb_reset_mac_header(skb)
    step(f"  l2      neigh_output       skb_push eth header (14)  {_geometry(skb)}")
    frame = bytes(skb.payload())
    skb.record(s.DMA, pb.LAYER_NIC, HOST_A, "ndo_start_xmit", len(frame))
    step(f"  nic     ndo_start_xmit     DMA from the TX ring      {len(frame)} bytes on the wire")
    s.consume_skb(skb, pb.LAYER_NIC, HOST_A, "napi_consume_skb")
    out.append("")

    # -- host B, receive path ----------------------------------------------
    step("host B, receive path")
    rx = s.alloc_skb(s.NET_SKB_PAD + len(frame), origin_host=HOST_A, id=skb.id)
    rx.prior_events = ()
    rx.events = list(skb.events)
    s.skb_reserve(rx, s.NET_SKB_PAD)
    s.skb_put_data(rx, frame)
    rx.record(s.DMA, pb.LAYER_NIC, HOST_B, "napi_gro_receive", len(frame))
    step(f"  nic     (device)           DMA into an RX ring slot  {_geometry(rx)}")
    eth = EthHdr.from_bytes(rx.payload())
    s.skb_reset_mac_header(rx)
    s.skb_pull(rx, eth.header_len)
    rx.protocol = eth.h_proto
    step(f"  l2      eth_type_trans     skb_pull eth header       {_geometry(rx)}")
    ip = IpHdr.from_bytes(rx.payload())
    s.skb_reset_network_header(rx)
    s.skb_trim(rx, ip.tot_len)
    s.skb_pull(rx, ip.header_len)
    step(f"  l3      ip_rcv             checksum ok, skb_pull     {_geometry(rx)}")
    udp = UdpHdr.from_bytes(rx.payload(), ip.saddr, ip.daddr)
    s.skb_reset_transport_header(rx)
    s.skb_pull(rx, udp.header_len)
    step(f"  l4      udp_rcv            checksum ok, skb_pull     {_geometry(rx)}")
    received = bytes(rx.payload())
    rx.record(s.COPY, pb.LAYER_SOCKET, HOST_B, "skb_copy_datagram_iter", len(received),
              copy_from="skb", copy_to="user")
    step(f"  socket  udp_recvmsg        copy skb -> user          {len(received)} bytes")
    s.consume_skb(rx, pb.LAYER_SOCKET, HOST_B)
    if received != payload:
        raise AssertionError("the datagram changed on its way")
    out.append("")

    # -- what moved ----------------------------------------------------------
    events = rx.all_events()
    t0 = events[0][4]
    step("events (what a trace of this packet shows)")
    for kind, layer, host, func, ts_ns, nbytes, _reason, c_from, c_to, *_head in events:
        where = f" {c_from} -> {c_to}" if kind == s.COPY else ""
        step(f"  +{(ts_ns - t0) / 1000:8.1f} us  {host}  {_LAYER[layer]:<7} {_KIND[kind]:<6} {func:<24}"
             f"{nbytes:>6} B{where}")
    cpu = [e for e in events if e[0] == s.COPY]
    dma = [e for e in events if e[0] == s.DMA]
    step("")
    step(f"CPU copies: {len(cpu)} ({sum(e[5] for e in cpu)} bytes); DMA transfers: {len(dma)} "
         f"({sum(e[5] for e in dma)} bytes, done by the devices, not the CPU); headers added and "
         "removed with skb_push/skb_pull, never copied.")
    return out


def decode_frame(frame: bytes) -> list[str]:
    """Decode an Ethernet frame header by header, tcpdump-style; stop at the first bad header."""
    lines: list[str] = []
    try:
        eth = EthHdr.from_bytes(frame)
        vlan = "" if eth.vlan_tci is None else f", vlan {eth.vlan_id}"
        lines.append(f"ethernet  {mac_to_str(eth.h_source)} > {mac_to_str(eth.h_dest)}, "
                     f"ethertype 0x{eth.h_proto:04x}{vlan}, length {len(frame)}")
        rest = memoryview(frame)[eth.header_len:]
        if eth.h_proto == ETH_P_ARP:
            arp = ArpHdr.from_bytes(rest)
            op = "request who-has" if arp.ar_op == 1 else "reply"
            lines.append(f"arp       {op} {ip_to_str(arp.ar_tip)} tell {ip_to_str(arp.ar_sip)} "
                         f"({mac_to_str(arp.ar_sha)})")
            return lines
        if eth.h_proto != ETH_P_IP:
            lines.append(f"(ethertype 0x{eth.h_proto:04x} not decoded)")
            return lines
        ip = IpHdr.from_bytes(rest)
        flags = "+".join(n for n, on in (("DF", ip.df), ("MF", ip.mf)) if on) or "none"
        lines.append(f"ipv4      {ip_to_str(ip.saddr)} > {ip_to_str(ip.daddr)}: tos 0x{ip.tos:x}, ttl {ip.ttl}, "
                     f"id {ip.id}, offset {ip.frag_offset}, flags [{flags}], proto {ip.protocol}, "
                     f"length {ip.tot_len}, checksum ok")
        l4 = rest[ip.header_len:ip.tot_len]
        if ip.frag_offset:
            lines.append(f"fragment  {len(l4)} bytes at offset {ip.frag_offset}")
        elif ip.protocol == IPPROTO_UDP:
            udp = UdpHdr.from_bytes(l4, ip.saddr, ip.daddr) if not ip.mf else UdpHdr.from_bytes(l4)
            lines.append(f"udp       {udp.source} > {udp.dest}: length {udp.len}"
                         f"{'' if ip.mf else ', checksum ok'}")
        elif ip.protocol == IPPROTO_TCP:
            tcp = TcpHdr.from_bytes(l4, ip.saddr, ip.daddr)
            opts = ", ".join(type(o).__name__.removeprefix("TcpOpt").lower() for o in tcp.parsed_options())
            lines.append(f"tcp       {tcp.source} > {tcp.dest}: flags [{_tcp_flags(tcp.flags)}], seq {tcp.seq}, "
                         f"ack {tcp.ack_seq}, win {tcp.window}, options [{opts}], "
                         f"length {len(l4) - tcp.header_len}, checksum ok")
        elif ip.protocol == IPPROTO_ICMP:
            icmp = IcmpHdr.from_bytes(l4)
            lines.append(f"icmp      type {icmp.type} code {icmp.code}, length {len(l4)}, checksum ok")
    except WireError as exc:
        lines.append(f"malformed: {exc} ({type(exc).__name__})")
    return lines


def _tcp_flags(flags: int) -> str:
    """Flags as tcpdump prints them: S F R P U E W, then . for ACK."""
    names = "".join(c for bit, c in ((0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x20, "U"),
                                     (0x40, "E"), (0x80, "W")) if flags & bit)
    return names + ("." if flags & 0x10 else "")


DEMO_BASE_TRIES = 20  # layouts 1000 ports apart, from the default's up


def live_demo(base_port: int | None, out=print) -> bool:
    """The default topology as 12 local processes, driven through the socket API as a
    user would: ping (ARP resolves on the way), a UDP datagram too big for one frame, a
    TCP connection carrying 100 kB, a datagram to a closed port. Then what each host
    counted. Returns success. Without a base port it takes the default's layout, or
    the next one whose ports are all free (the demo's topology is its own, for its run)."""
    import threading
    import time

    from pktpath.tools import iproute
    from pktpath.tools.apps import HostView, ping
    from pktpath.client import SOCK_STREAM, SocketApi
    from pktpath.config import DEFAULT_BASE_PORT, Addresses
    from pktpath.supervisor import LAYOUT_STEP, Supervisor, free_layout, ports_in_use
    from pktpath.topology import load

    topology = load("default")
    first = base_port or DEFAULT_BASE_PORT
    chosen = free_layout(topology, first, 1 if base_port else DEMO_BASE_TRIES)
    if chosen is None:
        busy = ports_in_use(Addresses(topology, first))
        out(f"port {busy[0]} is in use: another pktpath (or another program) runs on the ports this demo "
            f"needs. Stop it, or run the demo on other ports: .venv/bin/pktpath demo --base-port "
            f"{first + LAYOUT_STEP * DEMO_BASE_TRIES}")
        return False
    if chosen != first:
        out(f"the ports from {first} are in use (another pktpath up?): this demo runs on base port {chosen}")
    sup = Supervisor(topology, chosen)
    out("live: the default topology, hosts A (10.0.0.1) and B (10.0.0.2), 6 layer processes each")
    t0 = time.monotonic()
    sup.start()
    out(f"  {len(sup.services)} services healthy after {time.monotonic() - t0:.1f} s")
    channels = []
    try:
        a, b = SocketApi(sup.addrs.target("A", "socket")), SocketApi(sup.addrs.target("B", "socket"))
        channels.extend([a, b])
        out("\nA$ ping -c 3 10.0.0.2        (the first request waits for ARP)")
        replies = ping(a, "10.0.0.2", count=3, interval=0.2, out=lambda line: out("  " + line))

        out("\nB$ recv on UDP port 7000;  A$ send 3000 bytes to 10.0.0.2:7000  (3 fragments, reassembled at B)")
        got = []
        with b.socket() as rx:
            rx.bind(("0.0.0.0", 7000))
            reader = threading.Thread(target=lambda: got.append(rx.recvfrom(65535, timeout=10)))
            reader.start()
            data = bytes(i % 256 for i in range(3000))
            with a.socket() as tx:
                tx.sendto(data, ("10.0.0.2", 7000))
            reader.join()
        ok = bool(got) and got[0][0] == data
        out(f"  B received {len(got[0][0]) if got else 0} bytes from {got[0][1] if got else '-'}: "
            f"{'byte-exact' if ok else 'MISMATCH'}")

        out("\nB$ listen on TCP port 80;  A$ connect, send 100 kB, close  (handshake, segments of 1448, FIN)")
        with b.socket(SOCK_STREAM) as srv, a.socket(SOCK_STREAM) as cli:
            srv.bind(("0.0.0.0", 80))
            srv.listen(1)
            cli.connect(("10.0.0.2", 80), timeout=10)
            conn, peer = srv.accept(timeout=10)
            data = bytes(i % 251 for i in range(100_000))
            cli.sendall(data)
            cli.close()
            received = bytearray()
            while chunk := conn.recv(65536, timeout=10):
                received += chunk
            conn.close()
        tcp_ok = bytes(received) == data
        out(f"  B accepted {peer[0]}:{peer[1]} and read {len(received)} bytes to the FIN: "
            f"{'byte-exact' if tcp_ok else 'MISMATCH'}")

        out("\nA$ connect to 10.0.0.2:9 (nothing listens), send, recv")
        with a.socket() as tx:
            tx.connect(("10.0.0.2", 9))
            tx.send(b"anyone?")
            try:
                tx.recvfrom(timeout=5)
                out("  no error?")
            except OSError as exc:
                out(f"  recv: {exc.strerror}")

        time.sleep(0.2)
        out("\nWhat each host counted:")
        for h in "AB":
            view = HostView(sup.addrs, h)
            try:
                lines = [f"ip neigh: {line}" for rec in iproute.neighbours(view) for line in iproute.neigh_text(rec)]
                lines += [f"/proc/net/dev {x}" for x in view.dev(["eth0"])]
                lines += _counted(view.counters(), ("Ip", "Icmp", "Tcp", "Udp", "Drops"))
            finally:
                view.close()
            for line in lines:
                out(f"  {h}$ {line}")
    finally:
        for ch in channels:
            ch.close()
        statuses = sup.stop()
    bad = [f"{h}/{layer}={rc}" for h, layer, rc in statuses if rc != 0]
    out("\n  all services stopped cleanly" if not bad else f"\n  unclean exits: {', '.join(bad)}")
    return replies > 0 and ok and tcp_ok and not bad


_CONSTANTS = {"DefaultTTL", "Forwarding", "RtoAlgorithm", "RtoMin", "RtoMax", "MaxConn"}  # settings, not events


def _counted(counters: dict[str, dict[str, int]], groups: tuple[str, ...]) -> list[str]:
    """The walkthrough's summary: a line per group, its nonzero counters (netstat -s says it all)."""
    lines = []
    for name in groups:
        values = {k: v for k, v in counters.get(name, {}).items() if v and k not in _CONSTANTS}
        if values:
            lines.append(f"{name}: " + " ".join(f"{k}={v}" for k, v in sorted(values.items())))
    return lines
