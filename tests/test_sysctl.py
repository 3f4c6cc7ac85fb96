"""A host's sysctls (pktpath.sysctl): Linux's names, defaults and formats; a value of a
mechanism pktpath lacks refused, never taken silently."""

import pytest

from pktpath.sysctl import KNOBS, SysctlError, Sysctls, knob, unmodelled_reason


def test_the_knobs_start_at_linuxs_defaults_and_print_as_proc_sys_does():
    l4 = Sysctls("l4")
    assert l4.tcp_rmem == (4096, 131072, 33554432) and l4.tcp_sack == 1 and l4.tcp_congestion_control == "cubic"
    assert l4.get("net/ipv4/tcp_wmem") == "4096\t16384\t4194304"  # slashes, as sysctl takes them
    socket_layer = Sysctls("socket")
    assert socket_layer.tcp_rmem[1] == 131072
    with pytest.raises(AttributeError):
        socket_layer.tcp_sack  # noqa: B018 (only L4 reads it)


def test_a_value_is_set_only_as_linux_takes_it():
    l4 = Sysctls("l4")
    assert l4.set("net.ipv4.tcp_rmem", "4096 540000 15728640") == "4096\t540000\t15728640"
    assert l4.tcp_rmem[2] == 15728640
    for name, value, errno_name in (("net.ipv4.tcp_rmem", "1 2", "EINVAL"), ("net.ipv4.tcp_sack", "2", "EINVAL"),
                                    ("net.ipv4.tcp_congestion_control", "bbr", "EINVAL"),
                                    ("net.ipv4.tcp_nope", "1", "ENOENT")):
        with pytest.raises(SysctlError) as err:
            l4.set(name, value)
        assert err.value.errno_name == errno_name, (name, value)


def test_a_mechanism_pktpath_lacks_takes_only_the_value_it_behaves_as():
    l4 = Sysctls("l4")
    assert l4.set("net.ipv4.tcp_notsent_lowat", "4294967295") == "4294967295"  # as Linux with no low-water mark
    with pytest.raises(SysctlError, match=r"tcp_notsent_lowat = 16384 is not modelled: pktpath behaves as "
                                          r"4294967295 \(no not-sent low-water mark\)") as err:
        l4.set("net.ipv4.tcp_notsent_lowat", "16384")
    assert err.value.errno_name == "EOPNOTSUPP"
    assert l4.set("net.ipv4.tcp_early_retrans", "4") == "4"  # TLP either way since RACK
    assert knob("net.ipv4.tcp_syn_linear_timeouts").linux == 4
    assert knob("net.ipv4.tcp_syn_linear_timeouts").default == 0  # what pktpath behaves as
    assert all(k.name.startswith("net.ipv4.tcp_") for k in KNOBS.values())


def test_a_mechanism_whose_moment_pktpath_can_tell_takes_linuxs_values_and_names_that_moment():
    l4 = Sysctls("l4")
    assert (l4.tcp_frto, l4.tcp_syncookies, l4.tcp_dsack) == (2, 1, 1)  # Linux's defaults, taken
    assert l4.set("net.ipv4.tcp_fastopen", "0x70403") == str(0x70403)  # as proc_dointvec reads hex
    assert l4.set("net.ipv4.tcp_fastopen_key", "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4").startswith("a1a1a1a1-")
    with pytest.raises(SysctlError, match=r"tcp_syncookies = 2 is not modelled: pktpath behaves as 0 "
                                          r"\(no SYN cookies\)"):
        l4.set("net.ipv4.tcp_syncookies", "2")  # cookies for every SYN: not a moment, always
    assert unmodelled_reason("tcp_frto") == (
        "net.ipv4.tcp_frto on met an ACK after an RTO, where F-RTO decides whether it was spurious: "
        "pktpath has no F-RTO (RFC 5682)")
    assert unmodelled_reason("dsack_received").startswith("a D-SACK block arrived")


def test_tcp_ecn_is_modelled_with_linuxs_default_and_range():
    """2 (accept ECN, never ask) by default; 0-2 as Linux 6.18 takes them, 3 refused as there."""
    l4 = Sysctls("l4")
    assert l4.tcp_ecn == 2 and l4.tcp_ecn_fallback == 1
    assert l4.set("net.ipv4.tcp_ecn", "1") == "1" and l4.tcp_ecn == 1
    with pytest.raises(SysctlError) as err:
        l4.set("net.ipv4.tcp_ecn", "3")
    assert err.value.errno_name == "EINVAL"
