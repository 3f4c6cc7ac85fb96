"""struct tcp_info (include/uapi/linux/tcp.h) as getsockopt(TCP_INFO) fills it: packed by
pktpath's L4 (tcp_get_info), read back by pktpath drill for packetdrill's %{ }% code (code.c),
whose tcpi_* names it uses, from pktpath and the kernel alike."""

import struct

# (name, struct code) in the kernel's order; the bit-fields are read from their bytes below
FIELDS = (
    ("state", "B"), ("ca_state", "B"), ("retransmits", "B"), ("probes", "B"), ("backoff", "B"), ("options", "B"),
    ("wscales", "B"), ("app_limited_bits", "B"),
    *((name, "I") for name in (
        "rto", "ato", "snd_mss", "rcv_mss", "unacked", "sacked", "lost", "retrans", "fackets", "last_data_sent",
        "last_ack_sent", "last_data_recv", "last_ack_recv", "pmtu", "rcv_ssthresh", "rtt", "rttvar",
        "snd_ssthresh", "snd_cwnd", "advmss", "reordering", "rcv_rtt", "rcv_space", "total_retrans")),
    ("pacing_rate", "Q"), ("max_pacing_rate", "Q"), ("bytes_acked", "Q"), ("bytes_received", "Q"),
    ("segs_out", "I"), ("segs_in", "I"), ("notsent_bytes", "I"), ("min_rtt", "I"), ("data_segs_in", "I"),
    ("data_segs_out", "I"), ("delivery_rate", "Q"), ("busy_time", "Q"), ("rwnd_limited", "Q"),
    ("sndbuf_limited", "Q"), ("delivered", "I"), ("delivered_ce", "I"), ("bytes_sent", "Q"),
    ("bytes_retrans", "Q"), ("dsack_dups", "I"), ("reord_seen", "I"), ("rcv_ooopack", "I"), ("snd_wnd", "I"),
    ("rcv_wnd", "I"), ("rehash", "I"), ("total_rto", "H"), ("total_rto_recoveries", "H"), ("total_rto_time", "I"),
)
LAYOUT = struct.Struct("=" + "".join(code for _, code in FIELDS))
SIZE = LAYOUT.size  # 248: the kernel copies min(its size, optlen)

# code.c's constants, for the scripts' assertions
CONSTANTS = {
    "TCP_ESTABLISHED": 1, "TCP_SYN_SENT": 2, "TCP_SYN_RECV": 3, "TCP_FIN_WAIT1": 4, "TCP_FIN_WAIT2": 5,
    "TCP_TIME_WAIT": 6, "TCP_CLOSE": 7, "TCP_CLOSE_WAIT": 8, "TCP_LAST_ACK": 9, "TCP_LISTEN": 10, "TCP_CLOSING": 11,
    "TCP_CA_Open": 0, "TCP_CA_Disorder": 1, "TCP_CA_CWR": 2, "TCP_CA_Recovery": 3, "TCP_CA_Loss": 4,
    "TCPI_OPT_TIMESTAMPS": 1, "TCPI_OPT_SACK": 2, "TCPI_OPT_WSCALE": 4, "TCPI_OPT_ECN": 8, "TCPI_OPT_ECN_SEEN": 16,
    "TCPI_OPT_SYN_DATA": 32,
}


def unpack(data: bytes) -> dict[str, int]:
    """tcpi_* -> value, from what getsockopt(TCP_INFO) returned (a shorter struct: zeros)."""
    values = dict(zip((name for name, _ in FIELDS), LAYOUT.unpack(data[:SIZE].ljust(SIZE, b"\0"))))
    wscales, bits = values.pop("wscales"), values.pop("app_limited_bits")
    values.update(snd_wscale=wscales & 0xF, rcv_wscale=wscales >> 4, delivery_rate_app_limited=bits & 1,
                  fastopen_client_fail=bits >> 1 & 3)
    return {f"tcpi_{name}": value for name, value in values.items()}


def pack(**tcpi: int) -> bytes:
    """The struct from tcpi_* values (missing ones 0): how pktpath answers TCP_INFO."""
    values = {name: tcpi.get(f"tcpi_{name}", 0) for name, _ in FIELDS}
    values["wscales"] = tcpi.get("tcpi_snd_wscale", 0) | tcpi.get("tcpi_rcv_wscale", 0) << 4
    values["app_limited_bits"] = tcpi.get("tcpi_delivery_rate_app_limited", 0) | tcpi.get(
        "tcpi_fastopen_client_fail", 0) << 1
    return LAYOUT.pack(*(values[name] for name, _ in FIELDS))
