"""What a WSGI connection needs to know from the settings, built once per worker."""

from dataclasses import dataclass, field
from functools import cached_property

from unitcorn.http.options import DEFAULT_OPTIONS, ParseOptions
from unitcorn.http.parser import Limits
from unitcorn.http.peers import AllowList


@dataclass(frozen=True)
class WSGIOptions:
    """What a Connection needs to know from the settings."""

    limits: Limits
    keepalive: float  # seconds a connection may stay idle between requests (0 = no keep-alive)
    forwarded_allow_ips: frozenset[str]  # peers whose secure scheme/forwarder headers count
    script_name: str = ""
    url_scheme: str = "http"
    server_software: str = "unitcorn"
    head_timeout: float = 30.0  # a head, once begun, must arrive whole within this
    body_timeout: float = 60.0  # a request body must arrive whole within this after its head
    send_timeout: float = 30.0  # a response must move SEND_PROGRESS bytes within this
    multithread: bool = False  # wsgi.multithread: True under the threaded worker
    sendfile: bool = True  # a FileWrapper of a real file goes out with os.sendfile
    parse: ParseOptions = DEFAULT_OPTIONS  # gunicorn's parser knobs, header policy, PROXY mode
    proxy_allow_ips: frozenset[str] = field(default=frozenset({"127.0.0.1", "::1"}))

    # Built once per worker; asked once per connection.
    @cached_property
    def forwarded_peers(self) -> AllowList:
        return AllowList(self.forwarded_allow_ips)

    @cached_property
    def proxy_peers(self) -> AllowList:
        return AllowList(self.proxy_allow_ips)
