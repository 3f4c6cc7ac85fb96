"""TCP sockets: the socket layer's half of SOCK_STREAM (net/ipv4/tcp.c's
tcp_sendmsg and tcp_recvmsg, inet_stream_connect, inet_listen, inet_accept,
inet_shutdown, tcp_close), with the protocol (services/l4/tcp) in the L4
service.

Send: the user's bytes are copied into skbs of at most the size goal each (a
GSO packet's worth of whole segments, tcp_xmit_size_goal; a COPY per skb, as
tcp_sendmsg_locked copies into the write queue) and handed to L4;
what L4 has not had acknowledged yet counts against SO_SNDBUF, and a send
that finds it full waits (sk_stream_wait_memory) until L4's callbacks report
bytes acknowledged. Receive: L4 hands in-order bytes up as skbs; recv copies
up to bufsize across them (skb_copy_datagram_msg, a COPY), frees what it
used up and tells L4 how much was read (tcp_cleanup_rbuf), which may open the
window. Connect, accept, send and recv wait on the socket's wait queue (wait.py),
woken by L4's callbacks (sk_state_change, sk_data_ready, sk_error_report,
sk_write_space), never by polling; tcp_poll says what a socket is ready for.

Pure logic: L4's TCP calls are an object given to it.
"""

import errno
from collections import deque

from pktpath import skbuff as s
from pktpath.offload import tcp_xmit_size_goal
from pktpath.trace import socket_flow
from pktpath.pb import skbuff_pb2
from pktpath.services.socket.wait import (
    POLL_READ, POLL_WRITE, POLLERR, POLLHUP, POLLRDHUP, Blocking, would_block,
)
from pktpath.sockerr import SockError
from pktpath.wire.addr import (
    IN6ADDR_LOOPBACK, IPV6_ADDR_LINKLOCAL, ipv6_addr_is_multicast, ipv6_addr_set_v4mapped, ipv6_addr_type,
    ipv6_addr_v4mapped,
)

pb = skbuff_pb2
SOCK = pb.LAYER_SOCKET
SOMAXCONN = 4096            # net.core.somaxconn: the most a backlog can be
TCP_MSS_DEFAULT = 536
MSG_PEEK = 0x2
RCV_SHUTDOWN, SEND_SHUTDOWN = 1, 2
SIOCINQ, SIOCOUTQ, SIOCATMARK, SIOCOUTQNSD = 0x541B, 0x5411, 0x8905, 0x894B  # FIONREAD, TIOCOUTQ
AF_INET6 = 10
INADDR_LOOPBACK = 0x7F000001


class StreamState:
    """What the socket layer knows of a TCP socket (the struct socket side of it)."""

    def __init__(self) -> None:
        self.state = "CLOSE"        # CLOSE, SYN_SENT, ESTABLISHED, LISTEN; CLOSED once L4 is done
        self.mss = TCP_MSS_DEFAULT
        self.wmem = 0               # bytes handed to L4 and not acknowledged yet (sk_wmem_queued)
        self.unread = 0             # bytes in the receive queue
        self.head_used = 0          # bytes of the first queued skb already read
        self.eof = False            # the peer's FIN came
        self.backlog = 0
        self.accept_queue: deque = deque()  # children (Sock) L4 established, not accepted yet
        self.nodelay = False
        # the tcp_sock's options the user set, for getsockopt and for L4 at connect or listen
        self.cork = False           # TCP_CORK
        self.user_mss = 0           # TCP_MAXSEG (0: none)
        self.keepidle = 0           # TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT (0: the sysctl's)
        self.keepintvl = 0
        self.keepcnt = 0
        self.pingpong = False       # TCP_QUICKACK 0 (ping-pong mode), until L4 holds the socket
        self.recvmsg_inq = False    # TCP_INQ: each read says what is left (tp->recvmsg_inq)
        self.copied = 0             # bytes the user read, in all (copied_seq's advance)
        self.written = 0            # bytes the user's writes handed to L4, in all


def sk_stream_is_writeable(sock) -> bool:
    """__sk_stream_is_writeable(): sk_stream_wspace() >= sk_stream_min_wspace(): the free
    send buffer is at least half of what is queued, so a writer is never woken for a sliver."""
    return sock.sndbuf - sock.stream.wmem >= sock.stream.wmem // 2


def tcp_poll(sock) -> int:
    """tcp_poll(): a listener is readable with a connection to accept; a socket never
    connected or done (TCP_CLOSE) hangs up; after the handshake, readable with data
    or the peer's FIN, writable while the send buffer has room."""
    st = sock.stream
    if st.state == "LISTEN":
        return POLL_READ if st.accept_queue else 0
    closed = st.state in ("CLOSE", "CLOSED")
    shutdown = sock.shutdown | (RCV_SHUTDOWN if st.eof else 0) | (RCV_SHUTDOWN | SEND_SHUTDOWN
                                                                    if st.state == "CLOSED" else 0)
    mask = POLLHUP if closed or shutdown == RCV_SHUTDOWN | SEND_SHUTDOWN else 0
    if shutdown & RCV_SHUTDOWN:
        mask |= POLL_READ | POLLRDHUP
    if st.state != "SYN_SENT":
        if sock.queue:
            mask |= POLL_READ
        if shutdown & SEND_SHUTDOWN or sk_stream_is_writeable(sock):
            mask |= POLL_WRITE
    if sock.err:
        mask |= POLLERR
    return mask


class Stream:
    """The SOCK_STREAM calls of one host's socket layer."""

    def __init__(self, layer, tcp) -> None:
        self.layer = layer
        self.tcp = tcp  # L4: connect, listen, accepted, sendmsg, recvd, shutdown, close, setsockopt, ioctl

    # -- connect, listen, accept ------------------------------------------------------
    def connect(self, sock, daddr: int, dport: int, *, nonblocking: bool = False) -> Blocking:
        """inet_stream_connect() → tcp_v4_connect(), then wait for the handshake: EINPROGRESS
        at once if nonblocking; a connect whose time runs out is given up (ETIMEDOUT)."""
        st = sock.stream
        if st.state == "ESTABLISHED":
            raise SockError(errno.EISCONN, "already connected")
        if st.state == "SYN_SENT":
            raise SockError(errno.EALREADY, "a connect is in progress")
        if st.state in ("LISTEN", "CLOSED"):
            raise SockError(errno.EINVAL if st.state == "LISTEN" else errno.EISCONN, f"socket is {st.state}")
        if not dport:
            raise SockError(errno.EINVAL, "destination port 0")
        if sock.family == AF_INET6:
            daddr = self._tcp_v6_connect_checks(sock, daddr)
        old = sock.daddr, sock.dport
        sock.daddr, sock.dport = daddr, dport
        try:
            self.layer.hash(sock)  # the source address and an ephemeral port (inet_hash_connect)
        except SockError:
            sock.daddr, sock.dport = old
            raise
        st.state = "SYN_SENT"
        err = self.tcp.connect(sock)
        if err:
            st.state = "CLOSE"
            raise SockError(err, "connect")
        if nonblocking:
            raise SockError(errno.EINPROGRESS, "the handshake goes on; SO_ERROR tells how it ended")
        while True:
            with sock.lock:
                if st.state != "SYN_SENT" or sock.err:
                    err = sock.sock_error()
                    if err:
                        raise SockError(err, sock.err_detail or "connect")
                    return None
            if (yield POLL_WRITE):
                self.tcp.close(sock.sk)
                st.state = "CLOSED"
                raise SockError(errno.ETIMEDOUT, "no answer to the SYN in time")

    @staticmethod
    def _tcp_v6_connect_checks(sock, daddr: int) -> int:
        """tcp_v6_connect()'s first steps: :: is the loopback address (::ffff:127.0.0.1 for a
        socket bound to a v4-mapped address: a BSD'ism), a multicast peer is ENETUNREACH, a
        link-local one needs an interface (EINVAL), a v4-mapped one an IPv4 side (ENETUNREACH
        from an IPV6_V6ONLY socket)."""
        if not daddr:
            daddr = ipv6_addr_set_v4mapped(INADDR_LOOPBACK) if ipv6_addr_v4mapped(sock.saddr) else IN6ADDR_LOOPBACK
        if ipv6_addr_is_multicast(daddr):
            raise SockError(errno.ENETUNREACH, "a multicast peer")
        if ipv6_addr_type(daddr) & IPV6_ADDR_LINKLOCAL and not sock.scope_id:
            raise SockError(errno.EINVAL, "a link-local peer needs an interface (sin6_scope_id)")
        if ipv6_addr_v4mapped(daddr) and sock.ipv6only:
            raise SockError(errno.ENETUNREACH, "an IPv6-only socket reaches no IPv4 peer")
        return daddr

    def listen(self, sock, backlog: int) -> None:
        """inet_listen(): an unbound socket gets an ephemeral port first."""
        st = sock.stream
        if st.state not in ("CLOSE", "LISTEN"):
            raise SockError(errno.EINVAL, f"socket is {st.state}")
        if not sock.bound:
            self.layer.hash(sock)
        st.backlog = min(max(backlog, 0), SOMAXCONN)
        st.state = "LISTEN"
        self.tcp.listen(sock, st.backlog)

    def accept(self, sock) -> Blocking:
        """inet_accept() → inet_csk_accept(): the next established connection, a new socket."""
        st = sock.stream
        if st.state != "LISTEN":
            raise SockError(errno.EINVAL, "not listening")
        while True:
            with sock.lock:
                if sock.closed:
                    raise SockError(errno.EBADF, "closed while waiting")
                if st.state != "LISTEN":  # aborted while waiting (inet_csk_wait_for_connect)
                    raise SockError(errno.EINVAL, sock.err_detail or "not listening")
                if st.accept_queue:
                    child = st.accept_queue.popleft()
                    break
            if (yield POLL_READ):
                raise would_block("no connection waiting")
        self.tcp.accepted(sock.sk, child.sk)
        return child

    # -- callbacks from L4 ------------------------------------------------------------------
    def callbacks(self, items) -> int:
        """L4's TcpEvents for this host's sockets, in order. Returns how many found none.
        Data wakes a socket's reader once per batch (sk_data_ready), not once per skb."""
        orphans = 0
        fed: dict[int, object] = {}  # sockets given data in this batch
        for kind, sk, value, skb, child in items:
            sock = self.layer.by_sk(sk)
            if sock is None or sock.stream is None:  # gone, or no TCP socket: nothing of ours
                orphans += 1
                if skb is not None:
                    self.layer.drop(skb, pb.SKB_DROP_REASON_SOCKET_CLOSE, "tcp_data_ready")
                if kind == "accept":
                    self.tcp.abort(child.sk)  # the listener is gone
                continue
            if kind == "data":
                if self._queue_data(sock, skb):
                    fed[sk] = sock
            else:
                getattr(self, "_on_" + kind)(sock, value, skb, child)
        for sock in fed.values():
            sock.wq.wake(POLL_READ)  # sk_data_ready
        return orphans

    def _queue_data(self, sock, skb) -> bool:
        """tcp_data_queue's last step: the receive queue (the wake-up comes per batch)."""
        skb.record(s.ENTER, SOCK, self.layer.host, "tcp_data_ready")
        if sock.closed:  # closed by the user: L4 resets the connection as it sees this data
            self.layer.drop(skb, pb.SKB_DROP_REASON_SOCKET_CLOSE, "tcp_data_ready")
            return False
        with sock.lock:
            sock.queue.append(skb)
            sock.stream.unread += skb.len
        return True

    def _on_eof(self, sock, value, skb, child) -> None:
        with sock.lock:
            sock.stream.eof = True
        sock.wq.wake(POLL_READ | POLLRDHUP)  # sk_data_ready after tcp_fin

    def _on_established(self, sock, value, skb, child) -> None:
        with sock.lock:
            sock.stream.state = "ESTABLISHED"
            sock.stream.mss = value
        sock.wq.wake(POLL_WRITE)  # sk_state_change

    def _on_accept(self, sock, value, skb, child) -> None:
        new = self.layer.child(sock, child)
        new.stream.state = "ESTABLISHED"
        new.stream.mss = child.mss
        new.stream.recvmsg_inq = sock.stream.recvmsg_inq  # tcp_create_openreq_child: a copy of the listener
        with sock.lock:
            sock.stream.accept_queue.append(new)
        sock.wq.wake(POLL_READ)  # the listener's sk_data_ready

    def _on_error(self, sock, value, skb, child) -> None:
        with sock.lock:
            sock.err = value
            sock.err_detail = {errno.ECONNREFUSED: "connection refused (a reset answered the SYN)",
                               errno.ECONNRESET: "connection reset by the peer",
                               errno.ETIMEDOUT: "no acknowledgement: the connection timed out"}.get(value, "")
        sock.wq.wake(POLLERR)  # sk_error_report

    def _on_acked(self, sock, value, skb, child) -> None:
        with sock.lock:
            sock.stream.wmem = max(0, sock.stream.wmem - value)
            writeable = sk_stream_is_writeable(sock)
        if writeable:
            sock.wq.wake(POLL_WRITE)  # sk_stream_write_space

    def _on_sndbuf(self, sock, value, skb, child) -> None:
        """tcp_sndbuf_expand()'s suggestion: taken unless SO_SNDBUF was set."""
        if sock.sndbuf_locked:
            return
        with sock.lock:
            sock.sndbuf = max(sock.sndbuf, value)
        sock.wq.wake(POLL_WRITE)

    def abort(self, sock, err: int, detail: str) -> None:
        """What tcp_abort() leaves its user: the error (once), then a closed socket; a
        listener's unaccepted children go with it. For when L4's state is gone."""
        with sock.lock:
            sock.err, sock.err_detail = err, detail
            sock.stream.state = "CLOSED"
            children = list(sock.stream.accept_queue)
            sock.stream.accept_queue.clear()
        for child in children:
            self.layer.forget(child)
        sock.wq.wake(POLLERR | POLLHUP | POLL_READ | POLL_WRITE)  # sk_error_report, sk_state_change

    def _on_closed(self, sock, value, skb, child) -> None:
        with sock.lock:
            sock.stream.state = "CLOSED"
        sock.wq.wake(POLLHUP | POLL_READ | POLL_WRITE)  # sk_state_change at tcp_done
        if sock.closed:
            self.layer.forget(sock)

    # -- data -------------------------------------------------------------------------------
    def send(self, sock, data: bytes, *, flags: int = 0) -> Blocking:
        """tcp_sendmsg_locked(): copy the user's bytes into skbs, a new one of up to the size
        goal whenever less than SO_SNDBUF is queued (sk_stream_memory_free: so a write may
        take a whole skb past a small buffer), waiting for acknowledgements when it is not
        (sk_stream_wait_memory). Returns the bytes taken: all of them, or those taken
        before the time ran out (EAGAIN if none)."""
        st = sock.stream
        sent = 0
        while sent < len(data) or not data:
            with sock.lock:
                err = sock.sock_error()
                if err:
                    raise SockError(err, sock.err_detail or "send")
                if sock.shutdown & SEND_SHUTDOWN or st.state == "CLOSED":
                    raise SockError(errno.EPIPE, "the connection is closed for sending")
                if st.state not in ("ESTABLISHED", "SYN_SENT"):
                    raise SockError(errno.ENOTCONN, "not connected")
                if not data:
                    return 0
                free = st.state == "ESTABLISHED" and st.wmem < sock.sndbuf  # sk_stream_memory_free()
                chunk = data[sent:sent + tcp_xmit_size_goal(st.mss)] if free else b""
                st.wmem += len(chunk)
                st.written += len(chunk)
            if chunk:
                self.tcp.sendmsg(self._skbs(sock, chunk))
                sent += len(chunk)
            elif (yield POLL_WRITE):
                if sent:
                    return sent
                raise would_block("the send buffer is full")
        return sent

    def _skbs(self, sock, chunk: bytes) -> list:
        """The user's bytes in skbs of at most the size goal, each a COPY from user memory."""
        size_goal, skbs = tcp_xmit_size_goal(sock.stream.mss), []
        flow = socket_flow(sock.saddr, sock.daddr, sock.protocol, sock.sport, sock.dport, ipv6=sock.family == AF_INET6)
        for i in range(0, len(chunk), size_goal):
            piece = chunk[i:i + size_goal]
            skb = s.alloc_skb(s.MAX_HEADER + len(piece), origin_host=self.layer.host, sampled=self.layer.sample(flow))
            s.skb_reserve(skb, s.MAX_HEADER)
            s.skb_put_data(skb, piece)
            skb.sk = sock.sk
            skb.record(s.COPY, SOCK, self.layer.host, "tcp_sendmsg_locked", len(piece), copy_from="user",
                       copy_to="skb")
            skbs.append(skb)
        return skbs

    def recv(self, sock, bufsize: int, flags: int = 0) -> Blocking:
        """tcp_recvmsg(): whatever is queued, up to bufsize, once anything is; b"" at end of
        file (the peer's FIN, or SHUT_RD)."""
        st = sock.stream
        if st.state == "LISTEN":
            raise SockError(errno.ENOTCONN, "a listening socket has no data")
        while True:
            with sock.lock:
                if sock.queue:
                    data, copied = self._copy_out(sock, bufsize, peek=bool(flags & MSG_PEEK))
                    break
                if st.eof or sock.err or sock.shutdown & RCV_SHUTDOWN or st.state in ("CLOSED", "CLOSE") \
                        or sock.closed:
                    err = sock.sock_error()
                    if err:
                        raise SockError(err, sock.err_detail or "recv")
                    if st.state == "CLOSE" and not st.eof:
                        raise SockError(errno.ENOTCONN, "not connected")
                    return b""
            if (yield POLL_READ):
                raise would_block("no data in time")
        if copied:
            self.tcp.recvd(sock.sk, copied)
        return data

    def _copy_out(self, sock, bufsize: int, *, peek: bool) -> tuple[bytes, int]:
        """skb_copy_datagram_msg() across the queued skbs; frees the ones used up."""
        st = sock.stream
        out, pos = bytearray(), st.head_used
        for skb in list(sock.queue):
            if len(out) >= bufsize:
                break
            view = skb.payload()[pos:]
            n = min(len(view), bufsize - len(out))
            out += view[:n]
            if not peek:
                skb.record(s.COPY, SOCK, self.layer.host, "skb_copy_datagram_msg", n, copy_from="skb",
                           copy_to="user")
            if pos + n < skb.len:
                if not peek:
                    st.head_used = pos + n
                break
            if not peek:
                sock.queue.popleft()
                st.head_used = 0
                s.consume_skb(skb, SOCK, self.layer.host, "tcp_eat_recv_skb")
            pos = 0
        if peek:
            return bytes(out), 0
        st.unread -= len(out)
        st.copied += len(out)
        return bytes(out), len(out)

    @staticmethod
    def tcp_inq_hint(sock) -> int:
        """tcp_inq_hint(), TCP_CM_INQ's value after a read: rcv_nxt - copied_seq, so the FIN
        counts one while the data before it is unread; and 1 once only end of file is left
        (SOCK_DONE), that the reader reads on to see it."""
        with sock.lock:
            return sock.stream.unread + int(sock.stream.eof)

    def ioctl(self, sock, cmd: int) -> int:
        """tcp_ioctl(): SIOCINQ (tcp_inq), SIOCOUTQ, SIOCOUTQNSD; SIOCATMARK is 0, as pktpath
        keeps no urgent data. A listener has no such queues (EINVAL); a socket not connected,
        or in SYN_SENT, has nothing queued. L4 holds rcv_nxt, write_seq, snd_una and snd_nxt
        and answers (TcpGetInfo); the reads and writes still on their way to it (the ordered
        call stream) are counted here, as the kernel's copied_seq and write_seq move in the
        call itself. Once L4 is done with the connection (tcp_done) the socket layer answers
        from what it kept: its unread bytes and what was never acknowledged, as the kernel's
        sequence numbers stay; which of that was sent only L4 knew (SIOCOUTQNSD 0)."""
        st = sock.stream
        if cmd == SIOCATMARK:
            return 0
        if st.state == "LISTEN":
            raise SockError(errno.EINVAL, "a listening socket has no queues to report")
        if st.state in ("CLOSE", "SYN_SENT"):
            return 0
        q = self.tcp.ioctl(sock.sk)
        with sock.lock:
            if q is None:
                return {SIOCINQ: st.unread, SIOCOUTQ: st.wmem}.get(cmd, 0)
            if cmd == SIOCINQ:
                return max(0, q.inq - (st.copied - q.user_copied))
            return (q.outq if cmd == SIOCOUTQ else q.outq_nsd) + st.written - q.user_written

    # -- ending -----------------------------------------------------------------------------
    def shutdown(self, sock, how: int) -> None:
        """inet_shutdown() → tcp_shutdown()."""
        if sock.stream.state not in ("ESTABLISHED", "SYN_SENT"):
            raise SockError(errno.ENOTCONN, "not connected")
        self.tcp.shutdown(sock.sk, how)

    def close(self, sock) -> None:
        """tcp_close(): L4 sends the FIN, or a reset when data was left unread."""
        with sock.lock:
            queued = list(sock.queue)
            sock.queue.clear()
            children = list(sock.stream.accept_queue)
            sock.stream.accept_queue.clear()
        for skb in queued:
            self.layer.drop(skb, pb.SKB_DROP_REASON_SOCKET_CLOSE, "tcp_close")
        for child in children:  # never accepted: L4 resets them when the listener closes
            self.layer.forget(child)
        if sock.stream.state != "CLOSE":
            self.tcp.close(sock.sk)
        if sock.stream.state in ("CLOSE", "CLOSED"):
            self.layer.forget(sock)
