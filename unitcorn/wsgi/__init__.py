"""HTTP ⇄ WSGI for one client connection (PEP 3333), over the sans-IO rules of `unitcorn.http`.

The modules, one job each:
- `connection`  one connection's requests: read a head, run the PEP 3333 cycle, refuse bad ones
- `response`    start_response, write() and the app's iterable, framed by `http.response` writers
- `input`       wsgi.input: the request body as a file
- `environ`     the environ dict: CGI keys from the request, PROXY header, wsgi.file_wrapper
- `socket_io`   the client's socket: non-blocking I/O with deadlines and heartbeats
- `options`     what a connection needs to know from the settings
"""

from .connection import Connection
from .environ import FileWrapper
from .options import WSGIOptions
from .socket_io import BodyTimedOut, ClientDisconnected, ClientTimedOut

__all__ = [
    "BodyTimedOut",
    "ClientDisconnected",
    "ClientTimedOut",
    "Connection",
    "FileWrapper",
    "WSGIOptions",
]
