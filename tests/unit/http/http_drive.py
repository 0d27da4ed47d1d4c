"""Drive a RequestParser over a sequence of received pieces, as a connection would (test helper)."""

from unitcorn.http.parser import Request, RequestParser


def drive(
    pieces: list[bytes], eof: bool, parser: RequestParser | None = None, max_bytes: int = -1
) -> tuple[list[tuple[Request, bytes]], Request | None]:
    """Feed `pieces` (then EOF if asked); return the complete (request, body) pairs and any
    request whose body is still incomplete.  HTTPError propagates."""
    parser = parser or RequestParser()
    done: list[tuple[Request, bytes]] = []
    current: Request | None = None
    body: list[bytes] = []

    def pump() -> None:
        nonlocal current, body
        while True:
            if current is None:
                current = parser.next_request()
                if current is None:
                    return
                body = []
            data = parser.read_body(max_bytes)
            if data is None:
                return
            if data:
                assert max_bytes < 0 or len(data) <= max_bytes
                body.append(data)
            else:
                done.append((current, b"".join(body)))
                current = None

    for piece in pieces:
        parser.feed(piece)
        pump()
    if eof:
        parser.feed(b"")
        pump()
    return done, current
