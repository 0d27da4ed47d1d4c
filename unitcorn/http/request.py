"""What a parsed request head is, and the limits a head must respect."""

from dataclasses import dataclass

# What 0 stands for in each limit, as in gunicorn: the largest request line and field it accepts,
# and its MAX_HEADERS.  Never "unlimited": the head is buffered in memory before it is parsed.
MAX_REQUEST_LINE = 8190
MAX_FIELDS = 32768
MAX_FIELD_SIZE = 8190


@dataclass(frozen=True)
class Limits:
    """Size limits on a request head (gunicorn's defaults); 0 means the maximum, never unlimited."""

    request_line: int = 4094  # longer request line -> 414; 0 means MAX_REQUEST_LINE
    fields: int = 100  # more field lines (headers or trailers) -> 431; 0 means MAX_FIELDS
    field_size: int = 8190  # a longer field line -> 431; 0 means MAX_FIELD_SIZE

    def __post_init__(self) -> None:
        # Resolved once here, so the parser never meets a 0 and every bound below holds.
        for name, maximum in (
            ("request_line", MAX_REQUEST_LINE),
            ("fields", MAX_FIELDS),
            ("field_size", MAX_FIELD_SIZE),
        ):
            if getattr(self, name) <= 0:
                object.__setattr__(self, name, maximum)

    @property
    def max_head(self) -> int:
        """Bytes a whole head may take: the total bound, checked before its end is even seen.

        The largest head the other limits allow, every field at its limit (gunicorn's
        max_buffer_headers, plus the request line): nothing larger can be valid, so a head that
        passes it is refused (431) while it arrives, however small each of its fields is.
        """
        # request line + CRLF, every field line + CRLF, the final CRLF
        return self.request_line + 2 + self.fields * (self.field_size + 2) + 2


@dataclass(slots=True)
class Request:
    """One request head, validated; names are upper-cased, values latin-1 str without OWS."""

    method: str
    target: str  # the request-target exactly as sent
    path: str  # still percent-encoded; "*" for asterisk-form, "" for authority-form
    query: str  # after "?", "" if none
    version: tuple[int, int]
    headers: list[tuple[str, str]]
    content_length: int | None  # None when chunked or when there is no body
    is_chunked: bool
    keep_alive: bool
    expects_continue: bool
    # What a trusted front-end's secure_scheme_headers say ("https" or "http"); None if silent.
    scheme: str | None = None
