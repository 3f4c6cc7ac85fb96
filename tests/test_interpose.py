"""The pieces `pktpath run` puts into a program, without a host: name resolution as the
socket module's (checked against the C library's own answers for numeric addresses),
and select/poll/epoll that leave the kernel's own files alone."""

import errno
import os
import select
import selectors
import socket

import pytest

from pktpath.interpose import readiness
from pktpath.interpose.resolver import Resolver
from pktpath.topology import load


@pytest.fixture(scope="module")
def resolver():
    return Resolver(load("router"))


def test_numeric_addresses_resolve_as_the_c_library_resolves_them(resolver):
    for args in (("10.0.0.2", 80), ("10.0.0.2", "80", 0, socket.SOCK_STREAM), ("0.0.0.0", 0, socket.AF_INET),
                 ("10.1.2.3", None, 0, socket.SOCK_DGRAM, 0, socket.AI_PASSIVE), (None, 8000, 0, 0, 0,
                                                                                  socket.AI_PASSIVE)):
        assert resolver.getaddrinfo(*args) == socket.getaddrinfo(*args), args
    for args in (("2001:db8::5", 80), ("::", 0, socket.AF_INET6), (None, 8000, socket.AF_INET6),
                 ("2001:db8::5", "80", socket.AF_INET6, socket.SOCK_STREAM)):
        assert resolver.getaddrinfo(*args) == socket.getaddrinfo(*args), args
    for args in (("10.0.0.2", 80, socket.AF_INET6), ("2001:db8::5", 80, socket.AF_INET)):
        with pytest.raises(socket.gaierror) as libc:
            socket.getaddrinfo(*args)
        with pytest.raises(socket.gaierror) as ours:
            resolver.getaddrinfo(*args)
        assert ours.value.errno == libc.value.errno == socket.EAI_ADDRFAMILY, args


def test_topology_hosts_resolve_to_their_first_addresses_ipv6_first_and_back(resolver):
    """A dual-stack host's IPv6 address first, as glibc's RFC 6724 sort puts it."""
    assert resolver.getaddrinfo("B", "http", type=socket.SOCK_STREAM) == [
        (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("2001:db8:2::1", 80, 0, 0)),
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("10.0.2.1", 80))]
    assert resolver.getaddrinfo("B", 80, socket.AF_INET, socket.SOCK_DGRAM) == [
        (socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP, "", ("10.0.2.1", 80))]
    assert resolver.gethostbyname("r") == "10.0.1.254"
    assert resolver.gethostbyaddr("10.0.2.254") == ("R", [], ["10.0.2.254"])
    assert resolver.gethostbyaddr("2001:db8:1::fe") == ("R", [], ["2001:db8:1::fe"])
    assert resolver.gethostbyname_ex("A") == ("A", [], ["10.0.1.1"])
    assert resolver.sockaddr("A", 9, socket.AF_INET6) == ("2001:db8:1::1", 9)


def test_names_outside_the_topology_fail_as_the_socket_module_fails(resolver):
    with pytest.raises(socket.gaierror) as exc:
        resolver.getaddrinfo("example.com", 80)
    assert exc.value.errno == socket.EAI_NONAME
    with pytest.raises(socket.gaierror) as exc:
        resolver.getaddrinfo("B", 80, socket.AF_PACKET)
    assert exc.value.errno == socket.EAI_FAMILY
    with pytest.raises(socket.herror):
        resolver.gethostbyaddr("10.9.9.9")
    with pytest.raises(OverflowError):
        resolver.sockaddr("B", 70000)


def test_waiting_on_the_kernels_files_alone_is_the_kernels_wait():
    r, w = os.pipe()
    try:
        assert readiness.select([r], [w], [], 0) == ([], [w], [])
        os.write(w, b"x")
        p = readiness.poll()
        p.register(r, select.POLLIN)
        assert p.poll(1000) == [(r, select.POLLIN)]
        with readiness.epoll() as ep:
            ep.register(r, select.EPOLLIN)
            assert ep.poll(1) == [(r, select.EPOLLIN)]
    finally:
        os.close(r)
        os.close(w)


def test_the_selectors_take_the_patched_waits(monkeypatch):
    for cls in (selectors.SelectSelector, selectors.PollSelector, selectors.EpollSelector):
        monkeypatch.setattr(cls, "_select" if cls is selectors.SelectSelector else "_selector_cls",
                            getattr(cls, "_select" if cls is selectors.SelectSelector else "_selector_cls"))
    monkeypatch.setattr(select, "select", select.select)
    monkeypatch.setattr(select, "poll", select.poll)
    monkeypatch.setattr(select, "epoll", select.epoll)
    readiness.install()
    assert selectors.EpollSelector._selector_cls is readiness.epoll
    r, w = os.pipe()
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(w, selectors.EVENT_WRITE, "w")
            assert [(key.data, ev) for key, ev in sel.select(1)] == [("w", selectors.EVENT_WRITE)]
    finally:
        os.close(r)
        os.close(w)


def test_families_the_host_lacks_are_refused_not_taken_from_this_machine():
    from pktpath.interpose.sockets import PktSocket, RealSocket

    with pytest.raises(OSError) as exc:
        PktSocket(socket.AF_PACKET, socket.SOCK_RAW)
    assert exc.value.errno == errno.EAFNOSUPPORT
    a, b = socket.socketpair()  # local IPC stays the kernel's, and is still a socket.socket
    try:
        wrapped = PktSocket(a.family, a.type, a.proto, a.detach())
        assert type(wrapped) is RealSocket and isinstance(wrapped, PktSocket)
        wrapped.close()
    finally:
        b.close()


def test_pktpath_run_refuses_a_program_that_is_not_python(tmp_path):
    """Its sockets would be this machine's own: refused, with the reason."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "serve.sh"
    script.write_text("#!/bin/sh\necho served\n")
    script.chmod(0o755)
    run = subprocess.run([str(Path(sys.executable).parent / "pktpath"), "run", "--on", "B", "--", str(script)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "is not a Python program" in run.stderr and "served" not in run.stdout
