"""TCP segments A -> B as Ethernet frames, built by pktpath's codecs: for GRO, GSO and NAPI tests."""

from pktpath import skbuff as s
from pktpath.wire.ethernet import EthHdr
from pktpath.wire.ipv4 import IP_DF, IPPROTO_TCP, IpHdr
from pktpath.wire.tcp import TCPHDR_ACK, TCPHDR_PSH, TcpHdr, TcpOptNop, TcpOptTimestamp, encode_options

A, B = 0x0A000001, 0x0A000002
MAC_A, MAC_B = bytes.fromhex("02000000000a"), bytes.fromhex("02000000000b")
MSS = 1448


def frame(seq: int, payload: bytes, *, flags: int = TCPHDR_ACK, ip_id: int = 7, df: bool = True, sport: int = 40000,
          tsval: int = 1000, ack_seq: int = 5000) -> bytes:
    opts = encode_options(TcpOptNop(), TcpOptNop(), TcpOptTimestamp(tsval, 99))
    th = TcpHdr(sport, 5201, seq, ack_seq, 0, flags, 512, options=opts).to_bytes(payload, A, B)
    ip = IpHdr(A, B, IPPROTO_TCP, id=ip_id, frag_off=IP_DF if df else 0).to_bytes(len(th) + len(payload))
    return EthHdr(MAC_B, MAC_A, 0x0800).to_bytes() + ip + th + payload


def rx(frames: list[bytes]) -> list:
    """Frames as the driver makes them: NET_SKB_PAD headroom, data at the Ethernet header."""
    return [s.SkBuff(bytes(s.NET_SKB_PAD) + f, s.NET_SKB_PAD, s.NET_SKB_PAD + len(f), s.NET_SKB_PAD + len(f))
            for f in frames]


def stream(n: int, *, last_psh: bool = True, **kw) -> tuple[list[bytes], bytes]:
    data = bytes(i % 251 for i in range(n * MSS - 100))
    frames = [frame(1000 + i * MSS, data[i * MSS:(i + 1) * MSS],
                    flags=TCPHDR_ACK | (TCPHDR_PSH if last_psh and i == n - 1 else 0), ip_id=7 + i, **kw)
              for i in range(n)]
    return frames, data


def ip_skb(raw: bytes):
    """An IPv4 packet as IPv4 hands it to TCP: network header set, data at the TCP header."""
    skb = s.alloc_skb(s.NET_SKB_PAD + len(raw), sampled=False)
    s.skb_reserve(skb, s.NET_SKB_PAD)
    s.skb_put_data(skb, raw)
    s.skb_reset_network_header(skb)
    s.skb_pull(skb, 20)
    s.skb_reset_transport_header(skb)
    return skb


def user_skb(sk: int, n: int):
    """n bytes of a user's write to socket sk, as tcp_sendmsg takes them."""
    skb = s.alloc_skb(s.MAX_HEADER + n, sampled=False)
    s.skb_reserve(skb, s.MAX_HEADER)
    s.skb_put_data(skb, bytes(n))
    skb.sk = sk
    return skb
