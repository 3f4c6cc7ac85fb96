"""IPv4 receive validation: ip_rcv_core() (net/ipv4/ip_input.c) with its counters and drop reasons.

The checks run in the kernel's order (IpHdr.from_bytes keeps it): version and
IHL, the header present, the header checksum, then tot_len against what
arrived. The kernel's bookkeeping follows: every packet counts InReceives; a
bad checksum counts IpExt InCsumErrors and InHdrErrors and drops with IP_CSUM; a
packet shorter than its tot_len counts InTruncatedPkts and drops with
PKT_TOO_SMALL; any other header error counts InHdrErrors and drops with
IP_INHDR. A good packet loses its link padding (pskb_trim_rcsum) and gets its
transport header offset.
"""

from pktpath import skbuff as s
from pktpath.counters import Mib
from pktpath.pb import skbuff_pb2
from pktpath.wire import ChecksumError, IpHdr, TruncatedError, WireError

pb = skbuff_pb2
IP = "Ip"
IPEXT = "IpExt"  # /proc/net/netstat's IpExt line


def ip_rcv_core(skb: s.SkBuff, mib: Mib) -> IpHdr | int:
    """Validate the IPv4 header at skb.data. Returns the header, or the drop reason."""
    mib.inc(IP, "InReceives")
    if skb.pkt_type == pb.PACKET_OTHERHOST:
        return pb.SKB_DROP_REASON_OTHERHOST
    try:
        iph = IpHdr.from_bytes(skb.payload())
    except ChecksumError:
        mib.inc(IPEXT, "InCsumErrors")
        mib.inc(IP, "InHdrErrors")
        return pb.SKB_DROP_REASON_IP_CSUM
    except TruncatedError as exc:
        if exc.field == "tot_len":
            mib.inc(IPEXT, "InTruncatedPkts")
            return pb.SKB_DROP_REASON_PKT_TOO_SMALL
        mib.inc(IP, "InHdrErrors")
        return pb.SKB_DROP_REASON_IP_INHDR
    except WireError:
        mib.inc(IP, "InHdrErrors")
        return pb.SKB_DROP_REASON_IP_INHDR
    s.skb_reset_network_header(skb)
    s.skb_trim(skb, iph.tot_len)
    skb.transport_header = skb.network_header + iph.header_len
    return iph
