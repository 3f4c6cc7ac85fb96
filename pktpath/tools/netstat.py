"""`netstat -s` as net-tools 2.10 prints it (statistics.c), over counters kept as the kernel names them.

statistics.c walks /proc/net/snmp then /proc/net/netstat group by group, field by field in the kernel's order, and
looks each field up in its own prose tables with glibc's bsearch() and strcmp(). Those tables are sorted by hand and
not all in strcmp order, so some fields it has prose for are never found: those, like every field of a group it has
no table for, print as "Name: value" and only when nonzero. That is why netstat shows "Forwarding: 1" and
"TCPTimeouts: 5" but "55330 TCP sockets finished time wait in fast timer"; the lookup is reproduced, not corrected.
"""

NUMBER, OPT_NUMBER, I_FORWARD, I_INP_ICMP, I_OUTP_ICMP, I_RTO_ALG = range(6)  # statistics.c's enum State
I_STATIC = 1 << 16  # a configuration value: netstat never sets print_static, so these never print
I_TITLE = 1 << 17  # a histogram entry, under its state's title

# indent and title of the states an entry can leave behind (statistics.c: states[])
STATES = {NUMBER: (4, None), OPT_NUMBER: (4, None), I_INP_ICMP: (8, "ICMP input histogram:"),
          I_OUTP_ICMP: (8, "ICMP output histogram:")}

# statistics.c's tables, entries in its order (which bsearch depends on): (field, prose, kind)
IP_TAB = (
    ("DefaultTTL", "Default TTL is {}", NUMBER | I_STATIC),
    ("Forwarding", "Forwarding is {}", I_FORWARD | I_STATIC),
    ("ForwDatagrams", "{} forwarded", NUMBER),
    ("FragCreates", "{} fragments created", OPT_NUMBER),
    ("FragFails", "{} outgoing packets failed fragmentation", OPT_NUMBER),
    ("FragOKs", "{} outgoing packets fragmented ok", OPT_NUMBER),
    ("InAddrErrors", "{} with invalid addresses", OPT_NUMBER),
    ("InDelivers", "{} incoming packets delivered", NUMBER),
    ("InDiscards", "{} incoming packets discarded", NUMBER),
    ("InHdrErrors", "{} with invalid headers", OPT_NUMBER),
    ("InReceives", "{} total packets received", NUMBER),
    ("InUnknownProtos", "{} with unknown protocol", OPT_NUMBER),
    ("OutDiscards", "{} outgoing packets dropped", OPT_NUMBER),
    ("OutNoRoutes", "{} dropped because of missing route", OPT_NUMBER),
    ("OutRequests", "{} requests sent out", NUMBER),
    ("ReasmFails", "{} packet reassemblies failed", OPT_NUMBER),
    ("ReasmOKs", "{} packets reassembled ok", OPT_NUMBER),
    ("ReasmReqds", "{} reassemblies required", OPT_NUMBER),
    ("ReasmTimeout", "{} fragments dropped after timeout", OPT_NUMBER),
)
IN_HIST, OUT_HIST = I_INP_ICMP | I_TITLE, I_OUTP_ICMP | I_TITLE
ICMP_TAB = (
    ("InAddrMaskReps", "address mask replies: {}", IN_HIST),
    ("InAddrMasks", "address mask request: {}", IN_HIST),
    ("InDestUnreachs", "destination unreachable: {}", IN_HIST),
    ("InEchoReps", "echo replies: {}", IN_HIST),
    ("InEchos", "echo requests: {}", IN_HIST),
    ("InErrors", "{} input ICMP message failed", NUMBER),
    ("InMsgs", "{} ICMP messages received", NUMBER),
    ("InParmProbs", "wrong parameters: {}", IN_HIST),
    ("InRedirects", "redirects: {}", IN_HIST),
    ("InSrcQuenchs", "source quenches: {}", IN_HIST),
    ("InTimeExcds", "timeout in transit: {}", IN_HIST),
    ("InTimestampReps", "timestamp reply: {}", IN_HIST),
    ("InTimestamps", "timestamp request: {}", IN_HIST),
    ("OutAddrMaskReps", "address mask replies: {}", OUT_HIST),
    ("OutAddrMasks", "address mask requests: {}", OUT_HIST),
    ("OutDestUnreachs", "destination unreachable: {}", OUT_HIST),
    ("OutEchoReps", "echo replies: {}", OUT_HIST),
    ("OutEchos", "echo requests: {}", OUT_HIST),
    ("OutErrors", "{} ICMP messages failed", NUMBER),
    ("OutMsgs", "{} ICMP messages sent", NUMBER),
    ("OutParmProbs", "wrong parameters: {}", OUT_HIST),
    ("OutRedirects", "redirect: {}", OUT_HIST),
    ("OutSrcQuenchs", "source quench: {}", OUT_HIST),
    ("OutTimeExcds", "time exceeded: {}", OUT_HIST),
    ("OutTimestampReps", "timestamp replies: {}", OUT_HIST),
    ("OutTimestamps", "timestamp requests: {}", OUT_HIST),
)
TCP_TAB = (
    ("ActiveOpens", "{} active connection openings", NUMBER),
    ("AttemptFails", "{} failed connection attempts", NUMBER),
    ("CurrEstab", "{} connections established", NUMBER),
    ("EstabResets", "{} connection resets received", NUMBER),
    ("InErrs", "{} bad segments received", NUMBER),
    ("InSegs", "{} segments received", NUMBER),
    ("MaxConn", "", NUMBER),  # empty prose: known, never printed
    ("OutRsts", "{} resets sent", NUMBER),
    ("OutSegs", "{} segments sent out", NUMBER),
    ("PassiveOpens", "{} passive connection openings", NUMBER),
    ("RetransSegs", "{} segments retransmitted", NUMBER),
    ("RtoAlgorithm", "RTO algorithm is {}", I_RTO_ALG | I_STATIC),
    ("RtoMax", "", NUMBER),
    ("RtoMin", "", NUMBER),
)
UDP_TAB = (
    ("InDatagrams", "{} packets received", NUMBER),
    ("InErrors", "{} packet receive errors", NUMBER),
    ("NoPorts", "{} packets to unknown port received", NUMBER),
    ("OutDatagrams", "{} packets sent", NUMBER),
    ("RcvbufErrors", "{} receive buffer errors", NUMBER),
    ("SndbufErrors", "{} send buffer errors", NUMBER),
)
TCPEXT_TAB = (
    ("DelayedACKLocked", "{} delayed acks further delayed because of locked socket", OPT_NUMBER),
    ("DelayedACKLost", "Quick ack mode was activated {} times", OPT_NUMBER),
    ("DelayedACKs", "{} delayed acks sent", OPT_NUMBER),
    ("EmbryonicRsts", "{} resets received for embryonic SYN_RECV sockets", OPT_NUMBER),
    ("ListenDrops", "{} SYNs to LISTEN sockets dropped", OPT_NUMBER),
    ("ListenOverflows", "{} times the listen queue of a socket overflowed", OPT_NUMBER),
    ("LockDroppedIcmps", "{} ICMP packets dropped because socket was locked", OPT_NUMBER),
    ("OfoPruned", "{} packets dropped from out-of-order queue because of socket buffer overrun", OPT_NUMBER),
    ("OutOfWindowIcmps", "{} ICMP packets dropped because they were out-of-window", OPT_NUMBER),
    ("PAWSActive", "{} active connections rejected because of time stamp", OPT_NUMBER),
    ("PAWSEstab", "{} packets rejected in established connections because of timestamp", OPT_NUMBER),
    ("PAWSPassive", "{} passive connections rejected because of time stamp", OPT_NUMBER),
    ("PruneCalled", "{} packets pruned from receive queue because of socket buffer overrun", OPT_NUMBER),
    ("RcvPruned", "{} packets pruned from receive queue", OPT_NUMBER),
    ("SockMallocOOM", "Ran {} times out of system memory during packet sending", OPT_NUMBER),
    ("SyncookiesFailed", "{} invalid SYN cookies received", OPT_NUMBER),
    ("SyncookiesRecv", "{} SYN cookies received", OPT_NUMBER),
    ("SyncookiesSent", "{} SYN cookies sent", OPT_NUMBER),
    ("TCPAbortFailed", "{} times unable to send RST due to no memory", OPT_NUMBER),
    ("TCPAbortOnClose", "{} connections reset due to early user close", OPT_NUMBER),
    ("TCPAbortOnData", "{} connections reset due to unexpected data", OPT_NUMBER),
    ("TCPAbortOnLinger", "{} connections aborted after user close in linger timeout", OPT_NUMBER),
    ("TCPAbortOnMemory", "{} connections aborted due to memory pressure", OPT_NUMBER),
    ("TCPAbortOnSyn", "{} connections reset due to unexpected SYN", OPT_NUMBER),
    ("TCPAbortOnTimeout", "{} connections aborted due to timeout", OPT_NUMBER),
    ("TCPDirectCopyFromBacklog", "{} bytes directly in process context from backlog", OPT_NUMBER),
    ("TCPDirectCopyFromPrequeue", "{} bytes directly received in process context from prequeue", OPT_NUMBER),
    ("TCPDSACKOfoRecv", "{} DSACKs for out of order packets received", OPT_NUMBER),
    ("TCPDSACKOfoSent", "{} DSACKs sent for out of order packets", OPT_NUMBER),
    ("TCPDSACKOldSent", "{} DSACKs sent for old packets", OPT_NUMBER),
    ("TCPDSACKRecv", "{} DSACKs received", OPT_NUMBER),
    ("TCPDSackUndo", "{} congestion window recovered without slow start using DSACK", OPT_NUMBER),
    ("TCPDSACKUndo", "{} congestion windows recovered without slow start by DSACK", OPT_NUMBER),
    ("TCPFACKReorder", "Detected reordering {} times using FACK", OPT_NUMBER),
    ("TCPFastRetrans", "{} fast retransmits", OPT_NUMBER),
    ("TCPForwardRetrans", "{} forward retransmits", OPT_NUMBER),
    ("TCPFullUndo", "{} congestion windows fully recovered without slow start", OPT_NUMBER),
    ("TCPHPAcks", "{} predicted acknowledgments", OPT_NUMBER),
    ("TCPHPHits", "{} packet headers predicted", NUMBER),
    ("TCPHPHitsToUser", "{} packet headers predicted and directly queued to user", OPT_NUMBER),
    ("TCPLossFailures", "{} timeouts in loss state", OPT_NUMBER),
    ("TCPLoss", "{} TCP data loss events", OPT_NUMBER),
    ("TCPLossUndo", "{} congestion windows recovered without slow start after partial ack", OPT_NUMBER),
    ("TCPLostRetransmits", "{} retransmits lost", OPT_NUMBER),
    ("TCPMemoryPressures", "TCP ran low on memory {} times", OPT_NUMBER),
    ("TCPPartialUndo", "{} congestion windows partially recovered using Hoe heuristic", OPT_NUMBER),
    ("TCPPrequeued", "{} packets directly queued to recvmsg prequeue", OPT_NUMBER),
    ("TCPPrequeueDropped", "{} packets dropped from prequeue", OPT_NUMBER),
    ("TCPPureAcks", "{} acknowledgments not containing data payload received", OPT_NUMBER),
    ("TCPRcvCollapsed", "{} packets collapsed in receive queue due to low socket buffer", OPT_NUMBER),
    ("TCPRenoFailures", "{} timeouts after reno fast retransmit", OPT_NUMBER),
    ("TCPRenoRecoveryFailed", "{} reno fast retransmits failed", OPT_NUMBER),
    ("TCPRenoRecoveryFail", "{} classic Reno fast retransmits failed", OPT_NUMBER),
    ("TCPRenoRecovery", "{} times recovered from packet loss due to fast retransmit", OPT_NUMBER),
    ("TCPRenoReorder", "Detected reordering {} times using reno fast retransmit", OPT_NUMBER),
    ("TCPSackFailures", "{} timeouts after SACK recovery", OPT_NUMBER),
    ("TCPSackRecoveryFail", "{} SACK retransmits failed", OPT_NUMBER),
    ("TCPSackRecovery", "{} times recovered from packet loss by selective acknowledgements", OPT_NUMBER),
    ("TCPSACKReneging", "{} bad SACK blocks received", OPT_NUMBER),
    ("TCPSACKReorder", "Detected reordering {} times using SACK", OPT_NUMBER),
    ("TCPSchedulerFailed", "{} times receiver scheduled too late for direct processing", OPT_NUMBER),
    ("TCPSlowStartRetrans", "{} retransmits in slow start", OPT_NUMBER),
    ("TCPTimeouts", "{} other TCP timeouts", OPT_NUMBER),
    ("TCPTSReorder", "Detected reordering {} times using time stamp", OPT_NUMBER),
    ("TWKilled", "{} TCP sockets finished time wait in slow timer", OPT_NUMBER),
    ("TW", "{} TCP sockets finished time wait in fast timer", OPT_NUMBER),
    ("TWRecycled", "{} time wait sockets recycled by time stamp", OPT_NUMBER),
)
TABLES = {"Ip": IP_TAB, "Icmp": ICMP_TAB, "Tcp": TCP_TAB, "Udp": UDP_TAB, "TcpExt": TCPEXT_TAB}


# The kernel's groups and field order: /proc/net/snmp then /proc/net/netstat (net/ipv4/proc.c: snmp4_*_list,
# icmp_put, icmpmsg_put; net/mptcp/mib.c), as Linux 6.18 prints them.
_UDP = "InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors"
KERNEL_ORDER = {
    "Ip": ("Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards "
                 "InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs "
                 "FragFails FragCreates OutTransmits").split(),
    "Icmp": ("InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects "
                   "InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors "
                   "OutRateLimitGlobal OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs "
                   "OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks "
                   "OutAddrMaskReps").split(),
    # icmpmsg_put walks its 512 counters: every input type, then every output type
    "IcmpMsg": [f"InType{t}" for t in range(256)] + [f"OutType{t}" for t in range(256)],
    "Tcp": ("RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab "
                  "InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors").split(),
    "Udp": _UDP.split(),
    "UdpLite": _UDP.split(),
    "TcpExt": ("SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts PruneCalled RcvPruned OfoPruned "
                     "OutOfWindowIcmps LockDroppedIcmps ArpFilter TW TWRecycled TWKilled PAWSActive PAWSEstab "
                     "BeyondWindow TSEcrRejected PAWSOldAck PAWSTimewait DelayedACKs DelayedACKLocked DelayedACKLost "
                     "ListenOverflows ListenDrops TCPHPHits TCPPureAcks TCPHPAcks TCPRenoRecovery TCPSackRecovery "
                     "TCPSACKReneging TCPSACKReorder TCPRenoReorder TCPTSReorder TCPFullUndo TCPPartialUndo "
                     "TCPDSACKUndo TCPLossUndo TCPLostRetransmit TCPRenoFailures TCPSackFailures TCPLossFailures "
                     "TCPFastRetrans TCPSlowStartRetrans TCPTimeouts TCPLossProbes TCPLossProbeRecovery "
                     "TCPRenoRecoveryFail TCPSackRecoveryFail TCPRcvCollapsed TCPBacklogCoalesce TCPDSACKOldSent "
                     "TCPDSACKOfoSent TCPDSACKRecv TCPDSACKOfoRecv TCPAbortOnData TCPAbortOnClose TCPAbortOnMemory "
                     "TCPAbortOnTimeout TCPAbortOnLinger TCPAbortFailed TCPMemoryPressures TCPMemoryPressuresChrono "
                     "TCPSACKDiscard TCPDSACKIgnoredOld TCPDSACKIgnoredNoUndo TCPSpuriousRTOs TCPMD5NotFound "
                     "TCPMD5Unexpected TCPMD5Failure TCPSackShifted TCPSackMerged TCPSackShiftFallback TCPBacklogDrop "
                     "PFMemallocDrop TCPMinTTLDrop TCPDeferAcceptDrop IPReversePathFilter TCPTimeWaitOverflow "
                     "TCPReqQFullDoCookies TCPReqQFullDrop TCPRetransFail TCPRcvCoalesce TCPOFOQueue TCPOFODrop "
                     "TCPOFOMerge TCPChallengeACK TCPSYNChallenge TCPFastOpenActive TCPFastOpenActiveFail "
                     "TCPFastOpenPassive TCPFastOpenPassiveFail TCPFastOpenListenOverflow TCPFastOpenCookieReqd "
                     "TCPFastOpenBlackhole TCPSpuriousRtxHostQueues BusyPollRxPackets TCPAutoCorking "
                     "TCPFromZeroWindowAdv TCPToZeroWindowAdv TCPWantZeroWindowAdv TCPSynRetrans TCPOrigDataSent "
                     "TCPHystartTrainDetect TCPHystartTrainCwnd TCPHystartDelayDetect TCPHystartDelayCwnd "
                     "TCPACKSkippedSynRecv TCPACKSkippedPAWS TCPACKSkippedSeq TCPACKSkippedFinWait2 "
                     "TCPACKSkippedTimeWait TCPACKSkippedChallenge TCPWinProbe TCPKeepAlive TCPMTUPFail "
                     "TCPMTUPSuccess TCPDelivered TCPDeliveredCE TCPAckCompressed TCPZeroWindowDrop TCPRcvQDrop "
                     "TCPWqueueTooBig TCPFastOpenPassiveAltKey TcpTimeoutRehash TcpDuplicateDataRehash "
                     "TCPDSACKRecvSegs TCPDSACKIgnoredDubious TCPMigrateReqSuccess TCPMigrateReqFailure TCPPLBRehash "
                     "TCPAORequired TCPAOBad TCPAOKeyNotFound TCPAOGood TCPAODroppedIcmps").split(),
    "IpExt": ("InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets OutOctets "
                    "InMcastOctets OutMcastOctets InBcastOctets OutBcastOctets InCsumErrors InNoECTPkts InECT1Pkts "
                    "InECT0Pkts InCEPkts ReasmOverlaps").split(),
    "MPTcpExt": ("MPCapableSYNRX MPCapableSYNTX MPCapableSYNACKRX MPCapableACKRX MPCapableFallbackACK "
                       "MPCapableFallbackSYNACK MPCapableSYNTXDrop MPCapableSYNTXDisabled MPCapableEndpAttempt "
                       "MPFallbackTokenInit MPTCPRetrans MPJoinNoTokenFound MPJoinSynRx MPJoinSynBackupRx "
                       "MPJoinSynAckRx MPJoinSynAckBackupRx MPJoinSynAckHMacFailure MPJoinAckRx MPJoinAckHMacFailure "
                       "MPJoinRejected MPJoinSynTx MPJoinSynTxCreatSkErr MPJoinSynTxBindErr MPJoinSynTxConnectErr "
                       "DSSNotMatching DSSCorruptionFallback DSSCorruptionReset InfiniteMapTx InfiniteMapRx "
                       "DSSNoMatchTCP DataCsumErr OFOQueueTail OFOQueue OFOMerge NoDSSInWindow DuplicateData AddAddr "
                       "AddAddrTx AddAddrTxDrop EchoAdd EchoAddTx EchoAddTxDrop PortAdd AddAddrDrop MPJoinPortSynRx "
                       "MPJoinPortSynAckRx MPJoinPortAckRx MismatchPortSynRx MismatchPortAckRx RmAddr RmAddrDrop "
                       "RmAddrTx RmAddrTxDrop RmSubflow MPPrioTx MPPrioRx MPFailTx MPFailRx MPFastcloseTx "
                       "MPFastcloseRx MPRstTx MPRstRx SubflowStale SubflowRecover SndWndShared RcvWndShared "
                       "RcvWndConflictUpdate RcvWndConflict MPCurrEstab Blackhole MPCapableDataFallback "
                       "MD5SigFallback DssFallback SimultConnectFallback FallbackFailed WinProbe").split(),
}
ICMPMSG_PER_LINE = 16  # icmpmsg_put's PERLINE: each line pair gets its own "IcmpMsg:" title from netstat


def _bsearch(table, name):
    """glibc's bsearch() with statistics.c's cmpentries (strcmp), misses on an unsorted table included."""
    lo, hi = 0, len(table)
    while lo < hi:
        mid = (lo + hi) // 2
        if name < table[mid][0]:
            hi = mid
        elif name > table[mid][0]:
            lo = mid + 1
        else:
            return table[mid]
    return None


def _printval(out, table, name, val, state):
    """statistics.c's printval(): appends name's line(s) to out, returns the state it leaves."""
    entry = _bsearch(table, name)
    if entry is None:  # "try our best"
        if val:
            out.append(f"{' ' * STATES[state][0]}{name}: {val}")
        return state
    _, prose, kind = entry
    if kind & I_STATIC or not prose:
        return state
    if kind & I_TITLE:
        kind &= ~I_TITLE
        if state != kind:  # the title is indented as what came before it
            out.append(" " * STATES[state][0] + STATES[kind][1])
    if kind == NUMBER or val:  # opt_number and histogram entries only when nonzero
        out.append(" " * STATES[kind][0] + prose.format(val))
    return kind


def _fields(group, counters):
    """(field, value) in the kernel's order, then fields it does not know in the dict's order."""
    order = KERNEL_ORDER.get(group, ())
    known = set(order)
    pairs = [(f, counters.get(f, 0)) for f in order] + [(f, v) for f, v in counters.items() if f not in known]
    return [(f, v % 2 ** 64) for f, v in pairs]  # netstat reads every value with strtoull


def netstat_s(groups: dict[str, dict[str, int]]) -> list[str]:
    """The lines `netstat -s` (net-tools 2.10, statistics.c: parsesnmp, printval) prints for these counters.

    groups maps a /proc/net/snmp or /proc/net/netstat group ("Ip", "Icmp", "IcmpMsg", "Tcp", "Udp", "UdpLite",
    "TcpExt", "IpExt", "MPTcpExt", ...) to {field as the kernel spells it: value}. Groups come in the kernel's
    order, groups it does not have after them in the dict's order; a missing field is 0. Each group prints its
    title ("Tcp:"), then per field: the prose of statistics.c's tables (number entries always, opt_number and
    ICMP histogram entries only when nonzero, histogram entries 8 deep under "ICMP input histogram:" or "ICMP
    output histogram:", which print whenever the histogram is reached), nothing for static and prose-less
    entries (DefaultTTL, RtoMin ...), and "Name: value" when nonzero for a field its tables do not find, indented
    as the previous entry was (so IcmpMsg's types sit 8 deep after Icmp's output histogram). /proc/net/sctp/snmp's
    Sctp group, read from a file of its own, is not covered.
    """
    names = [g for g in KERNEL_ORDER if g in groups] + [g for g in groups if g not in KERNEL_ORDER]
    out, state = [], NUMBER  # state carries over groups: only a group with a table resets it
    for group in names:
        fields = _fields(group, groups[group])
        if group == "IcmpMsg":  # the kernel lists only the nonzero types, and those 16 to a line pair
            fields = [(f, v) for f, v in fields if v]
            lines = [fields[i:i + ICMPMSG_PER_LINE] for i in range(0, len(fields), ICMPMSG_PER_LINE)]
        else:
            lines = [fields]
        table = TABLES.get(group, ())
        for line in lines:
            out.append(f"{group}:")
            if table:
                state = NUMBER
            for name, val in line:
                state = _printval(out, table, name, val, state)
    return out
