"""The parser's knobs beyond size limits: gunicorn's leniencies, its header policy, PROXY mode.

`ParseOptions` is what the settings say, once per worker; `HeadRules` is those options as one
connection applies them, knowing whether its peer is a trusted front-end (forwarded_allow_ips).
Every default is gunicorn 27's.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from .grammar import METHOD, REQUEST_LINE, TOKEN

# gunicorn's default secure_scheme_headers: any one of them, with exactly this value, from a
# trusted front-end makes wsgi.url_scheme "https"; the same header with another value, "http".
DEFAULT_SECURE_SCHEME_HEADERS: Mapping[str, str] = MappingProxyType(
    {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}
)
HEADER_MAPS = ("drop", "refuse", "dangerous")
PROXY_PROTOCOL_MODES = ("off", "v1", "v2", "auto")


@dataclass(frozen=True)
class ParseOptions:
    """gunicorn's parser settings (all off, header_map "drop", proxy_protocol "off")."""

    permit_obsolete_folding: bool = False  # join obs-fold continuation lines instead of 400
    strip_header_spaces: bool = False  # "Name :" is "Name:" instead of 400 (a smuggling risk)
    permit_unconventional_http_method: bool = False  # any token as method, not just 3-20 A-Z...
    permit_unconventional_http_version: bool = False  # any HTTP/D.D, not just 1.0 and 1.1
    casefold_http_method: bool = False  # "get" becomes "GET" (after validation)
    # What a header name with "_" becomes: it would share its environ key with its "-" twin.
    header_map: str = "drop"  # drop it; "refuse" the request (400); "dangerous": keep it
    # Believed only from a trusted front-end (HeadRules.is_trusted):
    secure_scheme_headers: Mapping[str, str] = field(
        default_factory=lambda: DEFAULT_SECURE_SCHEME_HEADERS
    )
    forwarder_headers: frozenset[str] = frozenset({"SCRIPT_NAME", "PATH_INFO"})  # kept with "_"
    proxy_protocol: str = "off"  # off, v1, v2 or auto: a PROXY header may open a connection

    def __post_init__(self) -> None:
        if self.header_map not in HEADER_MAPS:
            raise ValueError(f"header_map must be one of {', '.join(HEADER_MAPS)}")
        if self.proxy_protocol not in PROXY_PROTOCOL_MODES:
            raise ValueError(f"proxy_protocol must be one of {', '.join(PROXY_PROTOCOL_MODES)}")

    # Built once per worker, not per connection.
    @cached_property
    def trusted_rules(self) -> "HeadRules":
        return HeadRules(self, is_trusted=True)

    @cached_property
    def untrusted_rules(self) -> "HeadRules":
        return HeadRules(self, is_trusted=False)


# RFC 9110 §9.1: method = token.  What permit_unconventional_http_method allows.
_ANY_METHOD_LINE = re.compile(REQUEST_LINE.pattern.replace(METHOD, TOKEN, 1))
_ANY_METHOD = re.compile(TOKEN)
_CONVENTIONAL_METHOD = re.compile(METHOD)

# The fields parse_head always looks at one by one (framing, connection handling, singletons).
FRAMING_FIELDS = frozenset(
    ("HOST", "CONTENT-LENGTH", "TRANSFER-ENCODING", "CONNECTION", "EXPECT", "CONTENT-TYPE")
)


class HeadRules:
    """ParseOptions as one connection applies them; built once per connection (or shared)."""

    __slots__ = (
        "casefold_method",
        "checked_fields",
        "forwarder_headers",
        "header_map",
        "is_lenient",
        "method",
        "permit_version",
        "permit_folding",
        "request_line",
        "secure_scheme_headers",
        "strip_header_spaces",
    )

    def __init__(self, options: ParseOptions, is_trusted: bool) -> None:
        any_method = options.permit_unconventional_http_method
        self.request_line = _ANY_METHOD_LINE if any_method else REQUEST_LINE
        self.method = _ANY_METHOD if any_method else _CONVENTIONAL_METHOD
        self.casefold_method = options.casefold_http_method
        self.permit_version = options.permit_unconventional_http_version
        self.permit_folding = options.permit_obsolete_folding
        self.strip_header_spaces = options.strip_header_spaces
        # A field block that fails the strict one-regex parse gets a second, lenient look.
        self.is_lenient = self.permit_folding or self.strip_header_spaces
        self.header_map = options.header_map
        # gunicorn: an untrusted peer's scheme and forwarder headers are plain headers.
        self.secure_scheme_headers: Mapping[str, str] = (
            options.secure_scheme_headers if is_trusted else {}
        )
        self.forwarder_headers = options.forwarder_headers if is_trusted else frozenset()
        self.checked_fields = FRAMING_FIELDS | frozenset(self.secure_scheme_headers)


DEFAULT_OPTIONS = ParseOptions()
DEFAULT_RULES = DEFAULT_OPTIONS.untrusted_rules
