"""The client's socket: non-blocking I/O with real deadlines, beating the heartbeat while it waits.

The socket is switched to non-blocking mode once: every recv/send is tried first and `poll` is
used only when it would block, which keeps the common case at one system call and gives real
deadlines.
"""

import os
import select
import socket
import time
from collections.abc import Callable

RECV_SIZE = 65536
# A lingering close reads and drops at most this much before it closes anyway.
_LINGER_LIMIT = 32 << 20
# Below this, buffers are joined into one send; above, sendmsg() avoids the copy.
JOIN_LIMIT = 1 << 16
_MAX_BUFFERS = 512  # per sendmsg(); Linux refuses more than IOV_MAX (1024)
# A response must get at least this many bytes into the client every send_timeout seconds.
SEND_PROGRESS = 1 << 16


class ClientDisconnected(OSError):
    """The client went away, or stalled past a deadline, in the middle of a request."""


class ClientTimedOut(ClientDisconnected):
    """The client stalled past a deadline: the worker drops it and serves others."""


class BodyTimedOut(ClientTimedOut):
    """The request body did not arrive within body_timeout: the client is told 408."""


class ClientSocket:
    """One client's socket: recv and send that wait no longer than a deadline."""

    def __init__(
        self,
        sock: socket.socket,
        send_timeout: float,
        notify: Callable[[], None] | None = None,
        notify_interval: float = 1.0,
    ) -> None:
        sock.setblocking(False)
        self._sock = sock
        # A TLS socket (unitcorn.tls) has no sendmsg: every byte must go through OpenSSL.
        self._joins_buffers = not hasattr(sock, "sendmsg")
        self._fd = sock.fileno()
        self._send_timeout = send_timeout
        # The send deadline runs only while we wait on the client: armed when a send first
        # blocks, pushed back each time SEND_PROGRESS bytes went out, pushed back by the time
        # the app spent between two sends, disarmed (0) by a send that never had to wait.
        self._send_deadline = 0.0
        self._send_credit = 0
        self._left_at = 0.0  # when the last send that waited returned to the app
        # Called at least every notify_interval while waiting on the client: waiting on a slow
        # client within the read timeout is work, not a stuck worker (the master's heartbeat).
        self._notify = notify
        self._notify_interval = notify_interval
        self._discarded = 0

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    # -- receiving -----------------------------------------------------------------------------

    def recv_nowait(self) -> bytes | None:
        """What the socket holds now; None when nothing, b"" at the client's EOF (or a reset)."""
        try:
            return self._sock.recv(RECV_SIZE)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def recv(self, deadline: float) -> bytes:
        """What the socket has, waiting until `deadline` at most; b"" at EOF (or a reset)."""
        while True:
            try:
                return self._sock.recv(RECV_SIZE)
            except BlockingIOError:
                self.wait(select.POLLIN, deadline)
            except OSError:  # reset by peer and the like: the same as a close
                return b""

    def shut_sending(self) -> None:
        """Start a lingering close: say we are done sending, keep reading until the client's EOF."""
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def discard_input(self) -> bool:
        """Read and drop what the client sent (a lingering close); False when it is time to close.

        That is at the client's EOF, or once _LINGER_LIMIT bytes were dropped: past that, a
        client still sending is not one we owe a clean close.
        """
        try:
            while data := self._sock.recv(RECV_SIZE):
                self._discarded += len(data)
                if self._discarded > _LINGER_LIMIT:
                    return False
        except BlockingIOError:
            return True
        except OSError:
            pass
        return False

    # -- sending -------------------------------------------------------------------------------

    def start_sending(self) -> None:
        """A response begins: once we wait on the client, it must take SEND_PROGRESS bytes
        every send_timeout. The time the app takes is not the client's."""
        self._send_deadline = 0.0
        self._send_credit = 0
        self._left_at = 0.0

    def send(self, data: bytes | memoryview, flags: int = 0) -> None:
        """Send all of `data`; ClientDisconnected if the client is gone or stalls too long."""
        sock = self._sock
        waited = False
        while True:
            try:
                sent = sock.send(data, flags)
            except BlockingIOError:
                self._wait_writable()
                waited = True
                continue
            except OSError as exc:
                raise ClientDisconnected(f"send failed: {exc}") from exc
            # _count_sent, inlined: this is every response's path.
            self._send_credit += sent
            if self._send_credit >= SEND_PROGRESS:
                self._send_credit = 0
                if self._send_deadline:
                    self._send_deadline = time.monotonic() + self._send_timeout
            if sent == len(data):
                # _back_to_the_app, inlined for the same reason.
                if waited:
                    self._left_at = time.monotonic()
                else:
                    self._send_deadline = 0.0
                return
            data = memoryview(data)[sent:]

    def _wait_writable(self) -> None:
        """Wait until the client takes bytes again, within the send deadline (armed here)."""
        now = time.monotonic()
        if not self._send_deadline:
            self._send_deadline = now + self._send_timeout
            self._send_credit = 0
        elif self._left_at:
            self._send_deadline += now - self._left_at  # the app's time, not the client's
        self._left_at = 0.0
        self.wait(select.POLLOUT, self._send_deadline)

    def _back_to_the_app(self, waited: bool) -> None:
        if waited:
            self._left_at = time.monotonic()
        else:
            self._send_deadline = 0.0  # the client kept up: nothing to hold against it

    def _count_sent(self, sent: int) -> None:
        """A client that keeps accepting bytes keeps its send deadline moving; a slow one does not."""
        self._send_credit += sent
        if self._send_credit >= SEND_PROGRESS:
            self._send_credit = 0
            if self._send_deadline:
                self._send_deadline = time.monotonic() + self._send_timeout

    def send_buffers(self, buffers: list[bytes]) -> None:
        """Send several buffers in order with as few system calls as possible (no copying)."""
        if len(buffers) > _MAX_BUFFERS:
            for start in range(0, len(buffers), _MAX_BUFFERS):
                self.send_buffers(buffers[start : start + _MAX_BUFFERS])
            return
        total = sum(map(len, buffers))
        if total <= JOIN_LIMIT or self._joins_buffers:
            self.send(b"".join(buffers))
            return
        try:
            sent = self._sock.sendmsg(buffers)  # scatter/gather: one call, no join
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise ClientDisconnected(f"send failed: {exc}") from exc
        self._count_sent(sent)
        if sent == total:
            self._back_to_the_app(waited=False)
            return
        for buffer in buffers:
            if sent >= len(buffer):
                sent -= len(buffer)
                continue
            self.send(memoryview(buffer)[sent:] if sent else buffer)
            sent = 0

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """Send `count` bytes of file `fd` from `offset` with os.sendfile; return bytes sent."""
        sent = 0
        waited = False
        while sent < count:
            try:
                n = os.sendfile(self._fd, fd, offset + sent, count - sent)
            except BlockingIOError:
                self._wait_writable()
                waited = True
                continue
            except OSError as exc:
                raise ClientDisconnected(f"sendfile failed: {exc}") from exc
            if n == 0:  # the file is shorter than announced
                break
            sent += n
            self._count_sent(n)
        self._back_to_the_app(waited)
        return sent

    # -- waiting -------------------------------------------------------------------------------

    def wait(self, event: int, deadline: float) -> None:
        """Wait for `event` (POLLIN/POLLOUT) until `deadline`, beating; ClientTimedOut past it."""
        timeout = deadline - time.monotonic()
        if timeout > 0:
            poller = select.poll()
            poller.register(self._fd, event)
            notify = self._notify
            while timeout > 0:
                if notify is None:
                    ready = poller.poll(timeout * 1000)
                else:
                    ready = poller.poll(min(timeout, self._notify_interval) * 1000)
                    notify()
                if ready:
                    return
                timeout = deadline - time.monotonic()
        raise ClientTimedOut("client timed out")
