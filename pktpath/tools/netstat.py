"""`netstat -s` as net-tools 2.10 prints it (statistics.c), over counters kept as the kernel names them;
`netstat -s -6` (parsesnmp6) too.

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

# statistics.c's IPv6 tables, looked up with /proc/net/snmp6's whole names ("Ip6InReceives"). Icmp6tab's
# "Icmp6OutRouterAdvertisements " ends in a space, so it is never found; Icmp6OutErrors, Icmp6InMLDv2Reports
# and their like have no entry: they print as "Name: value" when nonzero. (net-tools 2.10's prose, as its
# netstat prints it over a /proc/net/snmp6 of distinct values.)
IP6_TAB = (
    ("Ip6FragCreates", "{} fragments created", OPT_NUMBER),
    ("Ip6FragFails", "{} outgoing packets failed fragmentation", OPT_NUMBER),
    ("Ip6FragOKs", "{} outgoing packets fragmented ok", OPT_NUMBER),
    ("Ip6InAddrErrors", "{} with invalid addresses", OPT_NUMBER),
    ("Ip6InDelivers", "{} incoming packets delivered", NUMBER),
    ("Ip6InDiscards", "{} incoming packets discarded", NUMBER),
    ("Ip6InHdrErrors", "{} with invalid headers", OPT_NUMBER),
    ("Ip6InMcastPkts", "{} incoming multicast packets", OPT_NUMBER),
    ("Ip6InNoRoutes", "{} incoming packets with no route", OPT_NUMBER),
    ("Ip6InReceives", "{} total packets received", NUMBER),
    ("Ip6InTooBigErrors", "{} with packets too big", OPT_NUMBER),
    ("Ip6InTruncatedPkts", "{} with truncated packets", OPT_NUMBER),
    ("Ip6InUnknownProtos", "{} with unknown protocol", OPT_NUMBER),
    ("Ip6OutDiscards", "{} outgoing packets dropped", OPT_NUMBER),
    ("Ip6OutForwDatagrams", "{} forwarded", NUMBER),
    ("Ip6OutMcastPkts", "{} outgoing multicast packets", OPT_NUMBER),
    ("Ip6OutNoRoutes", "{} dropped because of missing route", OPT_NUMBER),
    ("Ip6OutRequests", "{} requests sent out", NUMBER),
    ("Ip6ReasmFails", "{} packet reassemblies failed", OPT_NUMBER),
    ("Ip6ReasmOKs", "{} packets reassembled ok", OPT_NUMBER),
    ("Ip6ReasmReqds", "{} reassemblies required", OPT_NUMBER),
    ("Ip6ReasmTimeout", "{} fragments dropped after timeout", OPT_NUMBER),
)
ICMP6_TAB = (
    ("Icmp6InDestUnreachs", "destination unreachable: {}", IN_HIST),
    ("Icmp6InEchoReplies", "echo replies: {}", IN_HIST),
    ("Icmp6InEchos", "echo requests: {}", IN_HIST),
    ("Icmp6InErrors", "{} input ICMP message failed", NUMBER),
    ("Icmp6InGroupMembQueries", "group member queries: {}", IN_HIST),
    ("Icmp6InGroupMembReductions", "group member reductions: {}", IN_HIST),
    ("Icmp6InGroupMembResponses", "group member responses: {}", IN_HIST),
    ("Icmp6InMsgs", "{} ICMP messages received", NUMBER),
    ("Icmp6InNeighborAdvertisements", "neighbour advertisement: {}", IN_HIST),
    ("Icmp6InNeighborSolicits", "neighbour solicits: {}", IN_HIST),
    ("Icmp6InParmProblems", "parameter problem: {}", IN_HIST),
    ("Icmp6InPktTooBigs", "packets too big: {}", IN_HIST),
    ("Icmp6InRedirects", "redirects: {}", IN_HIST),
    ("Icmp6InRouterAdvertisements", "router advertisement: {}", IN_HIST),
    ("Icmp6InRouterSolicits", "router solicits: {}", IN_HIST),
    ("Icmp6InTimeExcds", "received ICMPv6 time exceeded: {}", IN_HIST),
    ("Icmp6OutDestUnreachs", "destination unreachable: {}", OUT_HIST),
    ("Icmp6OutEchoReplies", "echo replies: {}", OUT_HIST),
    ("Icmp6OutEchos", "echo requests: {}", OUT_HIST),
    ("Icmp6OutGroupMembQueries", "group member queries: {}", OUT_HIST),
    ("Icmp6OutGroupMembReductions", "group member reductions: {}", OUT_HIST),
    ("Icmp6OutGroupMembResponses", "group member responses: {}", OUT_HIST),
    ("Icmp6OutMsgs", "{} ICMP messages sent", NUMBER),
    ("Icmp6OutNeighborAdvertisements", "neighbor advertisements: {}", OUT_HIST),
    ("Icmp6OutNeighborSolicits", "neighbor solicits: {}", OUT_HIST),
    ("Icmp6OutParmProblems", "parameter problem: {}", OUT_HIST),
    ("Icmp6OutPktTooBigs", "packets too big: {}", OUT_HIST),
    ("Icmp6OutRedirects", "redirects: {}", OUT_HIST),
    ("Icmp6OutRouterAdvertisements ", "router advertisement: {}", OUT_HIST),  # sic: the space
    ("Icmp6OutRouterSolicits", "router solicits: {}", OUT_HIST),
    ("Icmp6OutTimeExcds", "sent ICMPv6 time exceeded: {}", OUT_HIST),
)
UDP6_TAB = (
    ("Udp6InDatagrams", "{} packets received", NUMBER),
    ("Udp6InErrors", "{} packet receive errors", NUMBER),
    ("Udp6NoPorts", "{} packets to unknown port received", NUMBER),
    ("Udp6OutDatagrams", "{} packets sent", NUMBER),
)
TABLES6 = {"Ip6": IP6_TAB, "Icmp6": ICMP6_TAB, "Udp6": UDP6_TAB}  # snmp6tabs (Tcp6 never comes)


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

# icmp6type2name[] (net/ipv6/proc.c): the types /proc/net/snmp6 names, Icmp6In<Name> and Icmp6Out<Name>
ICMP6_TYPE_NAMES = {1: "DestUnreachs", 2: "PktTooBigs", 3: "TimeExcds", 4: "ParmProblems", 128: "Echos",
                    129: "EchoReplies", 130: "GroupMembQueries", 131: "GroupMembResponses",
                    132: "GroupMembReductions", 133: "RouterSolicits", 134: "RouterAdvertisements",
                    135: "NeighborSolicits", 136: "NeighborAdvertisements", 137: "Redirects", 143: "MLDv2Reports"}
_UDP6 = "InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors"
# /proc/net/snmp6's groups and fields in snmp6_seq_show's order (snmp6_ipstats_list, snmp6_icmp6_list, then
# snmp6_seq_show_icmpv6msg's named types, snmp6_udp6_list, snmp6_udplite6_list), as Linux 6.18 prints them
SNMP6_ORDER = {
    "Ip6": ("InReceives InHdrErrors InTooBigErrors InNoRoutes InAddrErrors InUnknownProtos InTruncatedPkts "
            "InDiscards InDelivers OutForwDatagrams OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds "
            "ReasmOKs ReasmFails FragOKs FragFails FragCreates InMcastPkts OutMcastPkts InOctets OutOctets "
            "InMcastOctets OutMcastOctets InBcastOctets OutBcastOctets InNoECTPkts InECT1Pkts InECT0Pkts InCEPkts "
            "OutTransmits").split(),
    "Icmp6": ("InMsgs InErrors OutMsgs OutErrors InCsumErrors OutRateLimitHost".split()
              + [f"In{n}" for _, n in sorted(ICMP6_TYPE_NAMES.items())]
              + [f"Out{n}" for _, n in sorted(ICMP6_TYPE_NAMES.items())]),
    "Udp6": (_UDP6 + " IgnoredMulti MemErrors").split(),
    "UdpLite6": (_UDP6 + " MemErrors").split(),
}
NETSTAT6_GROUPS = ("Ip6", "Icmp6", "Udp6", "UdpLite6", "Tcp")  # netstat -s -6's: snmp6's, then snmp's Tcp


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
    Sctp group, read from a file of its own, is not covered. /proc/net/snmp6's groups (Ip6, Icmp6, Udp6,
    UdpLite6), which netstat shows only with -6, come last, as netstat_s6 prints them.
    """
    snmp6 = {g: v for g, v in groups.items() if g in SNMP6_ORDER}  # asked for by name: netstat -6's way
    names = [g for g in KERNEL_ORDER if g in groups] + [g for g in groups if g not in KERNEL_ORDER and g not in snmp6]
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
    return out + (netstat_s6(snmp6) if snmp6 else [])


def snmp6_lines(groups: dict[str, dict[str, int]]) -> list[tuple[str, int]]:
    """/proc/net/snmp6 for these groups (net/ipv6/proc.c's snmp6_seq_show): each group's fields in the
    kernel's order with the group's name before them ("Ip6InReceives"), a missing one 0, then fields it
    does not know; Icmp6's named types from their Icmp6InType<N> counters (the kernel prints both from
    one), then the nonzero InType<N> and OutType<N> (snmp6_seq_show_icmpv6msg)."""
    lines = []
    for group in [g for g in SNMP6_ORDER if g in groups] + [g for g in groups if g not in SNMP6_ORDER]:
        counters = groups[group]
        order = list(SNMP6_ORDER.get(group, ()))
        values = {f: counters.get(f, 0) for f in order}
        numbered: list[str] = []
        if group == "Icmp6":
            for kind, name in ICMP6_TYPE_NAMES.items():
                for way in ("In", "Out"):
                    values[way + name] = counters.get(f"{way}Type{kind}", counters.get(way + name, 0))
            types = [f"{way}Type{t}" for way in ("In", "Out") for t in range(256)]
            numbered = [f for f in types if counters.get(f)]
            values.update((f, counters[f]) for f in numbered)
            values.update((f, 0) for f in types if f not in values)  # zero types: not printed, not unknown
        extra = [f for f in counters if f not in values]
        values.update((f, counters[f]) for f in extra)
        lines += [(group + f, values[f] % 2 ** 64) for f in order + numbered + extra]  # read with strtoull
    return lines


def _cpytitle(name: str) -> str:
    """statistics.c's cpytitle: a snmp6 name up to and including its first "6" (its group)."""
    six = name.find("6")
    return name if six < 0 else name[:six + 1]


def netstat_s6(groups: dict[str, dict[str, int]]) -> list[str]:
    """The lines `netstat -s -6` (net-tools 2.10, statistics.c: parsesnmp6) prints for these counters:
    /proc/net/snmp6 (snmp6_lines) read line by line by process6_fd, a group's title whenever a name
    no longer holds the current one (strstr), Ip6, Icmp6 and Udp6 with their prose tables (looked up
    by the whole name, bsearch's misses included) and any other group (UdpLite6) as "Name: value"
    when nonzero, indented as what came before; then /proc/net/snmp's Tcp group as `netstat -s` prints
    it. groups maps "Ip6", "Icmp6", "Udp6", "UdpLite6" and "Tcp" to {field without the group's name: value}."""
    out, state, title, table = [], NUMBER, None, ()
    for name, val in snmp6_lines({g: v for g, v in groups.items() if g != "Tcp"}):
        if title is None or title not in name:
            title = _cpytitle(name)
            out.append(f"{title}:")
            if title in TABLES6:  # newtable: only a known table resets the state
                table, state = TABLES6[title], NUMBER
            else:
                table = ()
        state = _printval(out, table, name, val, state)
    if "Tcp" in groups:
        out += netstat_s({"Tcp": groups["Tcp"]})
    return out
