"""TLS for the WSGI workers: wrap an accepted client, step its handshake, then look like a socket.

The handshake is driven by the worker's own event loop, one step per readiness event
(`TLSSocket.handshake_step`), so a client that connects and never finishes it costs a file
descriptor until header_timeout, never the worker. Afterwards `TLSSocket` gives `Connection`
what a plain non-blocking socket gives it: `recv`/`send` that raise BlockingIOError when they
would block (OpenSSL says "want read"/"want write"), b"" at the client's EOF.

Two things differ from a plain socket, and are handled here or by the worker's options:
- OpenSSL may hold decrypted bytes that the kernel no longer shows as readable; `recv` takes
  them too, or a pipelined request would sit unseen while the loop waits on epoll.
- Bytes must go through OpenSSL: no `sendmsg` (Connection then joins its buffers into one send)
  and no `os.sendfile` (the worker turns sendfile off when TLS is on).
"""

from __future__ import annotations

import select
import socket
import ssl
from typing import Any

from unitcorn.settings.tls import server_context
from unitcorn.settings.values import Settings

_WANTS = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class ServerTLS:
    """The worker's TLS side: one SSLContext (built by the master), wrapping accepted clients."""

    def __init__(self, context: ssl.SSLContext, suppress_ragged_eofs: bool) -> None:
        self.context = context
        self.suppress_ragged_eofs = suppress_ragged_eofs

    def wrap(self, sock: socket.socket) -> TLSSocket:
        """A non-blocking TLS server socket over `sock`; its handshake is still to be made."""
        sock.setblocking(False)
        wrapped = self.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False,
            suppress_ragged_eofs=self.suppress_ragged_eofs,
        )
        return TLSSocket(wrapped)


def server_tls(settings: Settings) -> ServerTLS | None:
    """The TLS side for these settings; None when TLS is off (no certfile)."""
    context = server_context(settings)
    if context is None:
        return None
    return ServerTLS(context, bool(settings.suppress_ragged_eofs))


class TLSSocket:
    """An accepted client's SSLSocket, shaped like the plain non-blocking socket Connection uses."""

    __slots__ = ("ssl_socket", "is_handshaken")

    def __init__(self, ssl_socket: ssl.SSLSocket) -> None:
        self.ssl_socket = ssl_socket
        self.is_handshaken = False

    def handshake_step(self) -> int:
        """Advance the handshake as far as it goes without waiting.

        Returns 0 once it is complete, else the poll event to wait for (POLLIN or POLLOUT)
        before the next step. Raises OSError (ssl.SSLError among them) when it failed: not TLS
        at all (a plain HTTP request), no cipher in common, no acceptable client certificate.
        """
        try:
            self.ssl_socket.do_handshake()
        except ssl.SSLWantReadError:
            return select.POLLIN
        except ssl.SSLWantWriteError:
            return select.POLLOUT
        self.is_handshaken = True
        return 0

    def fileno(self) -> int:
        return self.ssl_socket.fileno()

    def setblocking(self, flag: bool) -> None:
        self.ssl_socket.setblocking(flag)

    def getpeercert(self) -> Any:
        return self.ssl_socket.getpeercert()

    def recv(self, size: int) -> bytes:
        ssl_socket = self.ssl_socket
        try:
            data = ssl_socket.recv(size)
        except _WANTS:
            raise BlockingIOError() from None
        # Decrypted bytes OpenSSL holds are invisible to epoll: take them now.
        try:
            while data and (pending := ssl_socket.pending()):
                data += ssl_socket.recv(pending)
        except _WANTS:
            pass
        return data

    def send(self, data: bytes | memoryview, flags: int = 0) -> int:
        """Like socket.send; `flags` (MSG_MORE) have no meaning under TLS and are dropped.

        After BlockingIOError the caller must offer the same bytes again (OpenSSL has already
        encrypted a record of them): Connection.send does.
        """
        try:
            return self.ssl_socket.send(data)
        except _WANTS:
            raise BlockingIOError() from None

    def shutdown(self, how: int) -> None:
        self.ssl_socket.shutdown(how)

    def close(self) -> None:
        self.ssl_socket.close()
