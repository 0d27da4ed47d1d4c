"""The one exception every HTTP protocol violation raises, carrying the status to answer with."""


class HTTPError(Exception):
    """A request the server must refuse: `status` is the response code, `reason` a short text."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
