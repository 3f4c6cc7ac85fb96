#!/bin/sh
# The TCP settings the project's scripts assume: the kernel's packetdrill defaults.sh
# (tools/testing/selftests/net/packetdrill/defaults.sh) for the knobs these scripts depend
# on; the others keep Linux's defaults (pktpath sysctl -a says which it models).
sysctl -q net.ipv4.tcp_rmem="4096 540000 $((15*1024*1024))"
sysctl -q net.ipv4.tcp_wmem="4096 $((256*1024)) 4194304"
sysctl -q net.ipv4.tcp_timestamps=1
sysctl -q net.ipv4.tcp_syn_retries=5
sysctl -q net.ipv4.tcp_sack=1
sysctl -q net.ipv4.tcp_reordering=3
sysctl -q net.ipv4.tcp_congestion_control=cubic
sysctl -q net.ipv4.tcp_slow_start_after_idle=0
sysctl -q net.ipv4.tcp_early_retrans=4 net.ipv4.tcp_recovery=1
sysctl -q net.ipv4.tcp_ecn=0
tc qdisc add dev tun0 root pfifo
