"""What a parsed request head is, and the limits a head must respect."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Size limits on a request head (gunicorn's defaults); 0 means unlimited."""

    request_line: int = 4094  # longer request line -> 414
    fields: int = 100  # more field lines (headers or trailers) -> 431
    field_size: int = 8190  # a longer field line -> 431

    @property
    def max_head(self) -> int:
        """Bytes a head may take before its end must have been seen; 0 when any limit is off."""
        if not (self.request_line and self.fields and self.field_size):
            return 0
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
