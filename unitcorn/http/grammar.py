"""The RFC 9110/9112 grammar rules the request parser needs, as compiled regular expressions.

Head rules work on the head decoded as latin-1 (one byte = one character), so one decode serves
every rule and values come out as the str PEP 3333 wants; chunk rules work on raw bytes.
"""

import re

# RFC 9110 §5.6.2: token = 1*tchar;  tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-"
#   / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
TOKEN = r"[-!#$%&'*+.^_`|~0-9A-Za-z]+"

# RFC 9110 §5.5: field-vchar = VCHAR / obs-text;
#   field-content = field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ]
# The greedy middle run stops at the CR; the engine then backtracks only over trailing OWS, so the
# captured value never includes it.
_FIELD_VCHAR = r"[!-~\x80-\xff]"
_FIELD_VALUE = rf"(?:{_FIELD_VCHAR}(?:[\t -~\x80-\xff]*{_FIELD_VCHAR})?)?"

# RFC 9112 §5: field-line = field-name ":" OWS field-value OWS, terminated by CRLF.
# Anchored at a line start (MULTILINE); because a value can hold neither CR nor LF, each match is
# exactly one whole line, so "number of matches == number of LFs" proves the block is all valid
# lines: no obs-fold (a line starting with SP/HTAB), no space before the colon, no bare CR or LF,
# no control characters.  One findall parses and validates the whole block.
FIELD_LINE = re.compile(rf"^({TOKEN}):[ \t]*({_FIELD_VALUE})[ \t]*\r\n", re.MULTILINE)

# RFC 9110 §9.1: method = token, case-sensitive.  Narrower, as gunicorn is by default: no
# lowercase letter and no "#", 3 to 20 characters.  Every registered method fits; "get" is not
# GET (RFC 9110 §9.1), and an app comparing with "GET" must never see a variant that a front
# proxy may have routed as something else.
METHOD = r"[-!$%&'*+.^_`|~0-9A-Z]{3,20}"

# RFC 9112 §3: request-line = method SP request-target SP HTTP-version;
#   HTTP-version = "HTTP" "/" DIGIT "." DIGIT.  The target is checked further per form below;
#   here it is any run of VCHAR (no whitespace, no controls, no obs-text).
REQUEST_LINE = re.compile(rf"({METHOD}) ([!-~]+) HTTP/([0-9])\.([0-9])")

# RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG; a "%" not followed by two hex digits is invalid.
BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")

# RFC 3986 §3.2.2: host = IP-literal / IPv4address / reg-name (reg-name covers IPv4address);
#   RFC 9112 §3.2.3: authority-form = uri-host ":" port.
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~!$&'()*+,;=%]+)"
AUTHORITY_FORM = re.compile(rf"{_HOST}:[0-9]+")

# RFC 9110 §7.2: Host = uri-host [ ":" port ]; an empty value is allowed when the target URI has
# no authority.
HOST_VALUE = re.compile(rf"(?:{_HOST}(?::[0-9]*)?)?")

# RFC 9112 §3.2.2: absolute-form = absolute-URI; only the hierarchical "scheme://authority" shape
# means anything to an HTTP server.  Groups: authority, path (maybe empty), query (None if absent).
ABSOLUTE_FORM = re.compile(rf"[A-Za-z][A-Za-z0-9+.-]*://({_HOST}(?::[0-9]*)?)([^?#]*)(?:\?([^#]*))?")

# RFC 9110 §5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t !-~\x80-\xff])*"'

# RFC 9112 §7: transfer-coding = token *( OWS ";" OWS transfer-parameter );
#   transfer-parameter = token BWS "=" BWS ( token / quoted-string )
TRANSFER_CODING = re.compile(rf"({TOKEN})(?:[ \t]*;[ \t]*{TOKEN}[ \t]*=[ \t]*(?:{TOKEN}|{_QUOTED}))*")

# RFC 9112 §7.1: chunk-size = 1*HEXDIG; chunk-ext = *( BWS ";" BWS chunk-ext-name
#   [ BWS "=" BWS chunk-ext-val ] ).  At most 16 hex digits: anything longer is an overflow
#   attempt, never a real chunk.  No sign, no "0x", nothing after the extensions.
CHUNK_LINE = re.compile(
    rf"([0-9A-Fa-f]{{1,16}})(?:[ \t]*;[ \t]*{TOKEN}(?:[ \t]*=[ \t]*(?:{TOKEN}|{_QUOTED}))?)*".encode(
        "latin-1"
    )
)

# A LF not preceded by CR, or a CR not followed by LF: RFC 9112 §2.2 allows neither in a head.
BARE_CR_OR_LF = re.compile(rb"(?<!\r)\n|\r(?!\n)")
