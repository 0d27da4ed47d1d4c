"""Sans-IO request parser for one connection: bytes in, Requests and body bytes out.

The caller feeds whatever it received; the parser keeps the unread bytes, cuts heads at CRLFCRLF,
hands the body out as it arrives and leaves the bytes of pipelined requests in place.
"""

from .body import ChunkedBody, LengthBody
from .errors import HTTPError
from .grammar import BARE_CR_OR_LF
from .head import parse_head
from .options import DEFAULT_OPTIONS, ParseOptions
from .proxy import NEED_MORE, ProxyHeader, parse_proxy_header
from .request import Limits, Request

__all__ = ["HTTPError", "Limits", "ParseOptions", "ProxyHeader", "Request", "RequestParser"]


_DEFAULT_LIMITS = Limits()


class RequestParser:
    """Parses the requests of one connection, pipelined or not; raises HTTPError on bad input."""

    def __init__(
        self,
        limits: Limits = _DEFAULT_LIMITS,
        options: ParseOptions = DEFAULT_OPTIONS,
        *,
        is_trusted: bool = False,
        is_proxy_allowed: bool = False,
    ) -> None:
        """`is_trusted`: the peer is in forwarded_allow_ips (its scheme and forwarder headers
        are believed); `is_proxy_allowed`: in proxy_allow_ips (it may send a PROXY header)."""
        self._limits = limits
        self._rules = options.trusted_rules if is_trusted else options.untrusted_rules
        self._proxy_mode = options.proxy_protocol
        self._awaits_proxy = options.proxy_protocol != "off"  # only before the first request
        self._is_proxy_allowed = is_proxy_allowed
        # The PROXY header the connection began with, once consumed (None: there was none).
        self.proxy: ProxyHeader | None = None
        self._max_head = limits.max_head
        self._buf = b""
        self._pos = 0  # bytes before this index in _buf are consumed
        self._scanned = 0  # an incomplete head was checked up to this index in _buf
        self._eof = False
        self._body: LengthBody | ChunkedBody | None = None
        # Once broken, the connection stays broken.  Kept as (status, reason), never as the raised
        # exception: its traceback pins the frames it passed through (parse_head's locals, a
        # 10,000-header list; the caller's, which hold the connection, which holds this parser),
        # a cycle only a full collection frees, so a flood of refusals grows the worker by MBs.
        self._error: tuple[int, str] | None = None

    def feed(self, data: bytes) -> None:
        """Add received bytes; b"" means the peer closed its side (EOF)."""
        if not data:
            self._eof = True
        elif self._pos == len(self._buf):
            # Usual case: everything before was consumed, keep the received object as is.
            self._buf = data
            self._pos = 0
            self._scanned = 0
        else:
            self._buf = self._buf[self._pos :] + data
            self._scanned = max(0, self._scanned - self._pos)
            self._pos = 0

    def next_request(self) -> Request | None:
        """Return the next complete request head, or None if more bytes are needed."""
        if self._error is not None:
            raise HTTPError(*self._error)
        body = self._body
        if body is not None:
            if not body.done:
                raise RuntimeError("the previous request's body was not consumed")
            self._body = None
        try:
            return self._next_request()
        except HTTPError as exc:
            self._error = (exc.status, exc.reason)
            raise

    def _next_request(self) -> Request | None:
        buf = self._buf
        if self._pos == len(buf) and not self._eof:
            return None  # nothing buffered: the usual state between requests
        if self._awaits_proxy and not self._take_proxy_header():
            return None
        pos = self._skip_empty_lines()
        end = buf.find(b"\r\n\r\n", max(pos, self._scanned - 3))
        if end < 0:
            self._check_partial_head()
            return None
        if end - pos > self._max_head:
            raise HTTPError(431, "request head too large")
        request = parse_head(buf[pos : end + 2].decode("latin-1"), self._limits, self._rules)
        self._pos = end + 4
        if request.is_chunked:
            self._body = ChunkedBody(self._limits)
        elif request.content_length:
            self._body = LengthBody(request.content_length)
        return request

    def _take_proxy_header(self) -> bool:
        """Consume the PROXY header the connection may begin with; False if more bytes are needed."""
        found = parse_proxy_header(
            self._buf, self._pos, self._proxy_mode, self._is_proxy_allowed, self._eof
        )
        if found == NEED_MORE:
            if self._eof:
                raise HTTPError(400, "connection closed in the middle of the PROXY header")
            return False
        assert not isinstance(found, str)
        self.proxy, self._pos = found
        self._scanned = self._pos
        self._awaits_proxy = False
        return True

    def _skip_empty_lines(self) -> int:
        # RFC 9112 §2.2: a server SHOULD ignore empty lines received before a request line
        # (old clients send a CRLF after a POST body).
        buf, pos = self._buf, self._pos
        while buf.startswith(b"\r\n", pos):
            pos += 2
        self._pos = pos
        return pos

    def _check_partial_head(self) -> None:
        """Refuse an incomplete head as early as it is certainly bad or too large."""
        buf, pos = self._buf, self._pos
        size = len(buf) - pos
        if self._eof:
            if size:
                raise HTTPError(400, "connection closed in the middle of the request head")
            return
        # A CR at the very end may be the start of a CRLF: leave it for the next round.
        stop = len(buf) - 1 if buf.endswith(b"\r") else len(buf)
        if BARE_CR_OR_LF.search(buf, max(pos, self._scanned), stop):
            raise HTTPError(400, "bare CR or LF in request head")
        self._scanned = stop
        eol = buf.find(b"\r\n", pos)
        if eol < 0:  # not all here: a final CR may be the start of the CRLF
            line_size = size - (stop < len(buf))
        else:
            line_size = eol - pos
        if line_size > self._limits.request_line:
            raise HTTPError(414, "request line too long")
        if size > self._max_head:
            raise HTTPError(431, "request head too large")

    def read_body(self, max_bytes: int = -1) -> bytes | None:
        """Return body bytes available now (at most `max_bytes`, -1 = all buffered).

        b"" means the body is complete; None means more bytes are needed.
        """
        if self._error is not None:
            raise HTTPError(*self._error)
        body = self._body
        if body is None:
            return b""
        if max_bytes == 0:
            raise ValueError("max_bytes must be -1 or positive")
        try:
            data, self._pos = body.read(self._buf, self._pos, max_bytes, self._eof)
        except HTTPError as exc:
            self._error = (exc.status, exc.reason)
            raise
        return data

    def take_unread(self) -> bytes:
        """Hand over every buffered byte (the connection switches protocols, RFC 9110 §7.8)."""
        data = self._buf[self._pos :]
        self._buf, self._pos, self._scanned = b"", 0, 0
        return data

    @property
    def unread_bytes(self) -> int:
        """Bytes received and not yet handed out (body bytes, once a head was returned)."""
        return len(self._buf) - self._pos

    @property
    def has_buffered_data(self) -> bool:
        """True when bytes of a further (pipelined) request are already buffered."""
        if self._body is not None and not self._body.done:
            return False
        if self._awaits_proxy:  # a PROXY header may begin with CRLFs: none is skipped
            return self._pos < len(self._buf)
        return self._skip_empty_lines() < len(self._buf)

    @property
    def is_idle(self) -> bool:
        """True when no partial request is buffered (safe to close on a keep-alive timeout)."""
        if self._body is not None and not self._body.done:
            return False
        if self._awaits_proxy:
            return self._pos == len(self._buf)
        return self._skip_empty_lines() == len(self._buf)
