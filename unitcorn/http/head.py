"""Turn one complete request head (request line + field lines) into a validated Request.

This is the hot path: the whole field block is parsed and validated by one regex findall, and
only the handful of fields that decide message framing are looked at one by one.
"""

import re
from collections.abc import Mapping

from .errors import HTTPError
from .grammar import (
    ABSOLUTE_FORM,
    AUTHORITY_FORM,
    BAD_PERCENT,
    FIELD_LINE,
    HOST_VALUE,
    TOKEN,
    TRANSFER_CODING,
)
from .options import DEFAULT_RULES, HeadRules
from .request import Limits, Request

_HTTP_10 = (1, 0)
_HTTP_11 = (1, 1)

_TOKEN = re.compile(TOKEN)
# RFC 9110 §5.5: what a field value may not hold (checked on a value joined from obs-folds).
_BAD_VALUE_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def parse_head(head: str, limits: Limits, rules: HeadRules = DEFAULT_RULES) -> Request:
    """Parse `head`: the request line and field lines, each ending in CRLF, decoded as latin-1."""
    eol = head.find("\r\n")
    line = head[:eol]
    if len(line) > limits.request_line:
        raise HTTPError(414, "request line too long")
    match = rules.request_line.fullmatch(line)
    if match is None:
        raise HTTPError(400, _request_line_fault(line, rules))
    method, target, major, minor = match.groups()
    if major == "1" and minor in ("0", "1"):
        version = _HTTP_11 if minor == "1" else _HTTP_10
    elif rules.permit_version:
        # gunicorn's permit_unconventional_http_version: any HTTP/D.D; from 1.1 up it is
        # treated as 1.1, below as 1.0.
        version = (int(major), int(minor))
    else:
        raise HTTPError(505, f"HTTP/{major}.{minor} not supported")
    if rules.casefold_method:
        method = method.upper()
    is_11 = version >= _HTTP_11

    block = head[eol + 2 :]
    lines = block.count("\n")
    # Counted before the findall: 10,000 fields are refused without building 10,000 pairs.
    if lines > limits.fields and not rules.permit_folding:
        raise HTTPError(431, "too many header fields")
    pairs = FIELD_LINE.findall(block)
    if len(pairs) != lines:
        if not rules.is_lenient:
            raise HTTPError(400, field_block_fault(block))
        pairs = _lenient_fields(block, limits, rules)
    else:
        if lines > limits.fields:
            raise HTTPError(431, "too many header fields")
        if len(block) > limits.field_size:
            check_field_sizes(block, limits.field_size)
    headers = [(name.upper(), value) for name, value in pairs]

    path, query = _split_target(method, target)

    scheme = None
    secure = rules.secure_scheme_headers
    if secure:
        scheme = _scheme(headers, secure)
    if "_" in block:
        headers = _map_underscores(headers, rules)

    hosts = 0
    content_types = 0
    lengths: list[str] = []
    codings: list[str] = []
    connection = ""
    expects_continue = False
    checked = rules.checked_fields
    for name, value in headers:
        if name not in checked:
            continue
        if name == "HOST":
            hosts += 1
            if HOST_VALUE.fullmatch(value) is None:
                raise HTTPError(400, "invalid Host")
        elif name == "CONTENT-LENGTH":
            lengths.append(value)
        elif name == "CONTENT-TYPE":
            content_types += 1
        elif name == "TRANSFER-ENCODING":
            codings.append(value)
        elif name == "CONNECTION":
            connection = f"{connection},{value}" if connection else value
        elif name == "EXPECT":
            if value.lower() == "100-continue":
                expects_continue = is_11

    # RFC 9112 §3.2: exactly one Host on HTTP/1.1, never more than one.
    if hosts > 1:
        raise HTTPError(400, "more than one Host")
    if hosts == 0 and is_11:
        raise HTTPError(400, "missing Host")
    # RFC 9110 §5.3: a field that is not a list may not be repeated.  Two Content-Types would be
    # joined into one CONTENT_TYPE by the environ, and which one a front proxy checked is unknown.
    if content_types > 1:
        raise HTTPError(400, "more than one Content-Type")

    content_length: int | None = None
    is_chunked = False
    if codings:
        # RFC 9112 §6.1: TE with CL is a smuggling attempt; TE was not defined for HTTP/1.0.
        if lengths:
            raise HTTPError(400, "both Content-Length and Transfer-Encoding")
        if not is_11:
            raise HTTPError(400, "Transfer-Encoding on HTTP/1.0")
        _check_codings(codings)
        is_chunked = True
    elif lengths:
        content_length = _content_length(lengths)

    if connection:
        connection = connection.lower()
        if connection == "keep-alive" or connection == "close":  # the usual single option
            options = {connection}
        else:
            options = {option.strip(" \t") for option in connection.split(",")}
        if "close" in options:
            keep_alive = False
        else:
            keep_alive = is_11 or "keep-alive" in options
    else:
        keep_alive = is_11

    return Request(
        method,
        target,
        path,
        query,
        version,
        headers,
        content_length,
        is_chunked,
        keep_alive,
        expects_continue,
        scheme,
    )


def _scheme(headers: list[tuple[str, str]], secure: Mapping[str, str]) -> str | None:
    """gunicorn's secure_scheme_headers: the scheme a trusted front-end's headers say, if any.

    A listed header with exactly its listed value means https, with any other value http; two
    that disagree (or one repeated with both) are refused, as the proxy's intent is unknowable.
    """
    scheme = None
    for name, value in headers:
        expected = secure.get(name)
        if expected is None:
            continue
        said = "https" if value == expected else "http"
        if scheme is None:
            scheme = said
        elif said != scheme:
            raise HTTPError(400, "contradictory secure scheme headers")
    return scheme


def _map_underscores(headers: list[tuple[str, str]], rules: HeadRules) -> list[tuple[str, str]]:
    """gunicorn's header_map: a name with "_" would share its environ key with its "-" twin
    (X_Forwarded_For and X-Forwarded-For), a classic way to smuggle a header past a proxy.

    A trusted front-end's forwarder_headers are kept; otherwise "drop" drops the field, "refuse"
    refuses the request and "dangerous" keeps it.
    """
    forwarders = rules.forwarder_headers
    policy = rules.header_map
    kept = []
    for name, value in headers:
        if "_" in name and not (name in forwarders or "*" in forwarders):
            if policy == "drop":
                continue
            if policy == "refuse":
                raise HTTPError(400, "header name with underscore")
        kept.append((name, value))
    return kept


def _lenient_fields(block: str, limits: Limits, rules: HeadRules) -> list[tuple[str, str]]:
    """Parse a field block line by line, with gunicorn's permit_obsolete_folding and
    strip_header_spaces (slow path: only a block the strict parse refused comes here)."""
    pairs: list[list[str]] = []
    size = 0  # of the current field, its continuation lines included
    for line in block.split("\r\n")[:-1]:
        if line[:1] in (" ", "\t") and pairs and rules.permit_folding:
            # RFC 9112 §5.2: obs-fold is replaced by SP before the value is interpreted.
            size += 2 + len(line)
            pairs[-1][1] += " " + line.strip(" \t")
        else:
            name, colon, value = line.partition(":")
            if rules.strip_header_spaces:
                name = name.rstrip(" \t")
            if not colon or _TOKEN.fullmatch(name) is None:
                raise HTTPError(400, field_block_fault(line + "\r\n"))
            if len(pairs) >= limits.fields:
                raise HTTPError(431, "too many header fields")
            size = len(line)
            pairs.append([name, value.strip(" \t")])
        if size > limits.field_size:
            raise HTTPError(431, "header field too long")
        if _BAD_VALUE_CHAR.search(pairs[-1][1]):
            raise HTTPError(400, "invalid character in header value")
    return [(name, value) for name, value in pairs]


def _split_target(method: str, target: str) -> tuple[str, str]:
    """Check the request-target against its four forms (RFC 9112 §3.2); return (path, query)."""
    if "%" in target and BAD_PERCENT.search(target):
        raise HTTPError(400, "invalid percent-encoding in target")
    if target[0] == "/":  # origin-form, by far the most common
        if "#" in target:
            raise HTTPError(400, "fragment in target")
        path, _, query = target.partition("?")
        if method == "CONNECT":
            raise HTTPError(400, "CONNECT needs authority-form")
        return path, query
    if target == "*":  # asterisk-form
        if method != "OPTIONS":
            raise HTTPError(400, "asterisk-form is only for OPTIONS")
        return "*", ""
    if method == "CONNECT":  # authority-form
        if AUTHORITY_FORM.fullmatch(target) is None:
            raise HTTPError(400, "invalid authority-form target")
        return "", ""
    match = ABSOLUTE_FORM.fullmatch(target)
    if match is None:
        raise HTTPError(400, "invalid request target")
    path = match.group(2)
    if path and path[0] != "/":
        raise HTTPError(400, "invalid request target")
    return path or "/", match.group(3) or ""


def _check_codings(values: list[str]) -> None:
    """Allow only "chunked" as the last and only coding (we decode no other coding)."""
    codings = []
    for value in values:
        for element in value.split(","):
            element = element.strip(" \t")
            if not element:  # RFC 9110 §5.6.1: empty list elements are ignored
                continue
            match = TRANSFER_CODING.fullmatch(element)
            if match is None:
                raise HTTPError(400, "invalid Transfer-Encoding")
            codings.append(match.group(1).lower())
    if not codings:
        raise HTTPError(400, "empty Transfer-Encoding")
    # RFC 9112 §6.3: chunked must be final (else the length is unknowable), and applied once.
    if "chunked" in codings[:-1]:
        raise HTTPError(400, "chunked is not the final transfer coding")
    if codings != ["chunked"]:
        # RFC 9112 §6.1: an unknown (here: any non-chunked) transfer coding is 501.
        raise HTTPError(501, "unsupported transfer coding")


def _content_length(values: list[str]) -> int:
    """Exactly one Content-Length field holding one decimal length.

    RFC 9110 §8.6 lets a recipient accept repeated or list-form copies of one value; they are
    refused instead (as gunicorn does): a server that would pick another copy, or split the list
    another way, is what request smuggling feeds on, and no honest client sends them.
    """
    if len(values) > 1:
        raise HTTPError(400, "more than one Content-Length")
    text = values[0]
    if not (text.isdigit() and text.isascii()):
        raise HTTPError(400, "Content-Length list" if "," in text else "invalid Content-Length")
    if len(text) > 18:  # beyond any real body; keeps the int small
        raise HTTPError(400, "Content-Length too large")
    return int(text)


def check_field_sizes(block: str, field_size: int) -> None:
    """Refuse with 431 when one field line is longer than `field_size`."""
    for line in block.split("\r\n"):
        if len(line) > field_size:
            raise HTTPError(431, "header field too long")


def field_block_fault(block: str) -> str:
    """Name the first fault in a field block that failed to parse (slow path, errors only)."""
    for line in block.split("\r\n")[:-1]:
        if FIELD_LINE.fullmatch(line + "\r\n"):
            continue
        if "\n" in line or "\r" in line:
            return "bare CR or LF in header"
        if line[:1] in (" ", "\t"):
            return "obs-fold in header"
        name, colon, _ = line.partition(":")
        if not colon:
            return "header line without colon"
        if name != name.rstrip(" \t"):
            return "whitespace before colon"
        if _TOKEN.fullmatch(name) is None:
            return "invalid header name"
        return "invalid character in header value"
    return "bare CR or LF in header"


def _request_line_fault(line: str, rules: HeadRules) -> str:
    """Name the fault in a request line that failed to parse (slow path, errors only)."""
    if "\r" in line or "\n" in line:
        return "bare CR or LF in request line"
    parts = line.split(" ")
    if len(parts) != 3:
        return "invalid request line"
    method, target, _version = parts
    if rules.method.fullmatch(method) is None:
        return "invalid method"
    if not target or not target.isprintable() or not target.isascii():
        return "invalid request target"
    return "invalid HTTP version"
