"""The interrupt line between a NIC and its driver: message-signalled interrupts over
a Unix socket.

A PCIe device raises an MSI by writing a small message to an address the
driver set up (request_irq); the driver talks back through device registers:
unmasking the interrupt when its NAPI poll completes (napi_complete_done) and
ringing the TX doorbell (the tail register ndo_start_xmit writes). Here the
NIC listens on a Unix socket per device and the driver (softirq) connects: the
NIC writes one byte per interrupt, its cause (IRQ_RX, IRQ_TX_DONE); the driver
writes UNMASK or DOORBELL. A byte on a local socket reaches the other process
in tens of microseconds, where a gRPC message takes hundreds.

Pure logic apart from the socket: callbacks say what a driver's byte means.
"""

import logging
import os
import socket
import threading
from typing import Callable

from pktpath.hop import listen_unix

log = logging.getLogger(__name__)

UNMASK = b"U"    # napi_complete_done: interrupts back on
DOORBELL = b"D"  # ndo_start_xmit: new TX descriptors


class IrqLine:
    """The device's end: listens for its driver (one at a time; a new one replaces
    the old), raises interrupts to it, and hands what it writes to callbacks."""

    def __init__(self, path: str, *, on_connect: Callable[[], None], on_unmask: Callable[[], None],
                 on_doorbell: Callable[[], None]) -> None:
        self.path = path
        self._on_connect = on_connect
        self._on_unmask = on_unmask
        self._on_doorbell = on_doorbell
        self._conn: socket.socket | None = None
        self._lock = threading.Lock()
        self._sock = listen_unix(path, 1)
        self._closed = False
        threading.Thread(target=self._accept, name="irq-line", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                old, self._conn = self._conn, conn
            if old is not None:
                old.close()
            self._on_connect()  # a (re)attached driver starts with the line unmasked
            threading.Thread(target=self._read, args=(conn,), name="irq-driver", daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(64)
            except OSError:
                data = b""
            if not data:
                with self._lock:
                    if self._conn is conn:
                        self._conn = None
                conn.close()
                return
            if DOORBELL[0] in data:
                self._on_doorbell()
            if UNMASK[0] in data:
                self._on_unmask()

    def raise_irq(self, cause: int) -> bool:
        """Signal the driver; False (the interrupt is lost, as with no handler) if none listens."""
        conn = self._conn
        if conn is None:
            return False
        try:
            conn.sendall(bytes([cause]))
            return True
        except OSError:
            return False

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if os.path.exists(self.path):
            os.unlink(self.path)
