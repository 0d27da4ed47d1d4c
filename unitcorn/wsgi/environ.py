"""Build the WSGI environ: the connection's fixed keys, then each request's CGI keys (PEP 3333).

Proxy trust is decided before this point (the parser only reports a scheme or forwarded fields
from a trusted peer, `http/proxy.py`); here a PROXY header's addresses replace the socket's.
"""

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from unitcorn.http.parser import ProxyHeader, Request

from .options import WSGIOptions


class FileWrapper:
    """wsgi.file_wrapper: iterates blocks, and lets the server sendfile() a real file instead."""

    def __init__(self, filelike: Any, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read, size = self.filelike.read, self.blksize
        while block := read(size):
            yield block


def base_environ(client_addr: Any, server_addr: Any, options: WSGIOptions, errors: Any) -> dict:
    """The keys every request of one connection shares; copied per request."""
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": options.url_scheme,
        "wsgi.errors": errors,
        "wsgi.multithread": options.multithread,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "SERVER_SOFTWARE": options.server_software,
        "SCRIPT_NAME": options.script_name.rstrip("/"),
    }
    if options.url_scheme == "https":  # TLS terminated here (unitcorn.tls); CGI's spelling too
        environ["HTTPS"] = "on"
    if isinstance(client_addr, tuple):
        environ["REMOTE_ADDR"] = str(client_addr[0])
        environ["REMOTE_PORT"] = str(client_addr[1])
    elif isinstance(client_addr, bytes):
        environ["REMOTE_ADDR"] = client_addr.decode("latin-1")
    else:
        environ["REMOTE_ADDR"] = str(client_addr or "")
    if isinstance(server_addr, tuple):
        environ["SERVER_NAME"] = str(server_addr[0])
        environ["SERVER_PORT"] = str(server_addr[1])
    else:  # unix socket: refined per request from Host
        environ["SERVER_NAME"] = str(server_addr or "")
        environ["SERVER_PORT"] = ""
    return environ


def proxy_environ(proxy: ProxyHeader) -> dict[str, str]:
    """What a PROXY header puts in environ (gunicorn's keys): the client it relays becomes
    REMOTE_ADDR/REMOTE_PORT, the address it was reached at PROXY_ADDR/PROXY_PORT."""
    environ = {"PROXY_PROTOCOL": proxy.protocol}
    if proxy.client_addr is not None:  # None: "use the socket's own addresses" (LOCAL, ...)
        environ["REMOTE_ADDR"] = proxy.client_addr
        environ["REMOTE_PORT"] = str(proxy.client_port)
        environ["PROXY_ADDR"] = str(proxy.proxy_addr)
        environ["PROXY_PORT"] = str(proxy.proxy_port)
    return environ


_ENVIRON_KEYS: dict[str, str] = {"CONTENT-TYPE": "CONTENT_TYPE", "CONTENT-LENGTH": "CONTENT_LENGTH"}


def _environ_key(name: str) -> str:
    # A name with "_" reaches here only if header_map (http/head.py) let it through.
    key = "HTTP_" + name.replace("-", "_")
    if len(_ENVIRON_KEYS) < 1000:
        _ENVIRON_KEYS[name] = key
    return key


def request_environ(base: dict, request: Request, script_name: str, is_unix_server: bool) -> dict:
    """A fresh environ for `request`: `base` (the connection's keys) plus the request's own."""
    environ = base.copy()
    environ["REQUEST_METHOD"] = request.method
    environ["QUERY_STRING"] = request.query
    environ["RAW_URI"] = request.target
    if request.version == (1, 1):
        environ["SERVER_PROTOCOL"] = "HTTP/1.1"
    elif request.version == (1, 0):
        environ["SERVER_PROTOCOL"] = "HTTP/1.0"
    else:  # permit_unconventional_http_version
        environ["SERVER_PROTOCOL"] = "HTTP/{}.{}".format(*request.version)

    for name, value in request.headers:
        key = _ENVIRON_KEYS.get(name) or _environ_key(name)
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
        else:
            environ[key] = value
    if request.is_chunked:
        environ.pop("CONTENT_LENGTH", None)
    if request.target[0] != "/" and "://" in request.target:
        # RFC 9112 §3.2.2: with an absolute-form target, its authority replaces Host.
        environ["HTTP_HOST"] = urlsplit(request.target).netloc
    if request.scheme is not None:  # said by a trusted front-end (secure_scheme_headers)
        environ["wsgi.url_scheme"] = request.scheme
    if is_unix_server:
        _server_from_host(environ)

    if "HTTP_SCRIPT_NAME" in environ:
        # gunicorn: a SCRIPT_NAME field that passed the header policy (a trusted front-end's
        # forwarder_headers, or header_map = dangerous) replaces the mount point.
        for name, value in request.headers:
            if name == "SCRIPT_NAME":
                script_name = value.rstrip("/")
        environ["SCRIPT_NAME"] = script_name
    path = request.path
    if "%" in path:
        # PEP 3333: PATH_INFO holds the decoded bytes, each byte one latin-1 character.
        path = unquote_to_bytes(path).decode("latin-1")
    if script_name and path.startswith(script_name):
        rest = path[len(script_name) :]
        if not rest or rest[0] == "/":
            path = rest
    environ["PATH_INFO"] = path
    return environ


def _server_from_host(environ: dict) -> None:
    """Behind a unix socket the Host header is the only hint of the server's name and port."""
    host = environ.get("HTTP_HOST")
    if not host:
        return
    if host.startswith("["):  # IP-literal
        name, _, rest = host.partition("]")
        name += "]"
        port = rest[1:]
    else:
        name, _, port = host.partition(":")
    if not port:
        port = "443" if environ["wsgi.url_scheme"] == "https" else "80"
    environ["SERVER_NAME"] = name
    environ["SERVER_PORT"] = port
