"""A drill script's commands on a pktpath host (pktpath.drill.shell): the kernel's
defaults.sh and its kin read as sysctls, everything else refused with the line."""

import pytest

from pktpath.drill.packets import Unsupported
from pktpath.drill.shell import Shell

DEFAULTS = """#!/bin/bash
# Set standard production config values that relate to TCP behavior.
ip tcp_metrics flush all > /dev/null 2>&1
sysctl -q net.ipv4.tcp_rmem="4096 540000 $((15*1024*1024))"
sysctl -q net.ipv4.tcp_wmem="4096 $((256*1024)) 4194304"
sysctl -q net.ipv4.tcp_early_retrans=4 net.ipv4.tcp_recovery=1
sysctl -q net.ipv4.tcp_notsent_lowat=4294967295 > /dev/null 2>&1
tc qdisc add dev tun0 root pfifo
"""


def shell():
    calls = []
    return Shell(lambda name, value, ignore=False: calls.append((name, value, ignore)),
                 lambda: calls.append("restore"), lambda kind: calls.append(("qdisc", kind))), calls


def test_defaults_sh_becomes_the_sysctls_it_sets(tmp_path):
    (tmp_path / "defaults.sh").write_text(DEFAULTS)
    sh, calls = shell()
    sh.run("./defaults.sh\nsysctl -e -q net.ipv4.tcp_syn_linear_timeouts=0", str(tmp_path))
    assert calls == [("net.ipv4.tcp_rmem", "4096 540000 15728640", False),
                     ("net.ipv4.tcp_wmem", "4096 262144 4194304", False),
                     ("net.ipv4.tcp_early_retrans", "4", False), ("net.ipv4.tcp_recovery", "1", False),
                     ("net.ipv4.tcp_notsent_lowat", "4294967295", False), ("qdisc", "pfifo_fast"),
                     ("net.ipv4.tcp_syn_linear_timeouts", "0", True)]


def test_the_selftests_set_sysctls_py_and_its_restore_script(tmp_path):
    sh, calls = shell()
    sh.run("./set_sysctls.py /proc/sys/net/ipv4/tcp_slow_start_after_idle=1 \\\n"
           "                 /proc/sys/net/ipv4/tcp_min_tso_segs=10", str(tmp_path))
    sh.run("/tmp/sysctl_restore_${PPID}.sh", str(tmp_path))
    assert calls == [("net/ipv4/tcp_slow_start_after_idle", "1", False), ("net/ipv4/tcp_min_tso_segs", "10", False),
                     "restore"]


def test_tc_puts_fq_or_a_fifo_at_the_devices_root_and_nothing_else(tmp_path):
    sh, calls = shell()
    sh.run("tc qdisc replace dev tun0 root fq\ntc qdisc add dev tun0 root pfifo", str(tmp_path))
    assert calls == [("qdisc", "fq"), ("qdisc", "pfifo_fast")]
    with pytest.raises(Unsupported, match="no fq_codel"):
        sh.run("tc qdisc replace dev tun0 root fq_codel", str(tmp_path))


@pytest.mark.parametrize("line", ["tc qdisc replace dev tun0 root netem delay 1ms", "grep ' 0A ' /proc/net/tcp",
                                  "sysctl net.ipv4.tcp_rmem", "echo 1 > /proc/sys/net/ipv4/tcp_sack"])
def test_anything_else_makes_the_script_unsupported_with_its_line(line, tmp_path):
    sh, _ = shell()
    with pytest.raises(Unsupported, match="`"):
        sh.run(line, str(tmp_path))
