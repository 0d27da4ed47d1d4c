"""Behind a proxy: gunicorn's header policy, PROXY protocol and parser knob settings."""

from __future__ import annotations

import pytest

from unitcorn.settings import ConfigError
from unitcorn.workers.base import wsgi_options


def test_defaults_are_gunicorns(load) -> None:
    s = load("app:app")
    assert s.secure_scheme_headers == {
        "X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on",
    }
    assert s.forwarder_headers == ["SCRIPT_NAME", "PATH_INFO"]
    assert (s.header_map, s.proxy_protocol) == ("drop", "off")
    assert s.proxy_allow_ips == frozenset({"127.0.0.1", "::1"})
    assert not any((
        s.permit_obsolete_folding, s.strip_header_spaces, s.casefold_http_method,
        s.permit_unconventional_http_method, s.permit_unconventional_http_version,
    ))


def test_gunicorn_flags(load) -> None:
    s = load(
        "--forwarder-headers", "SCRIPT_NAME,REMOTE_USER", "--header-map", "Refuse",
        "--proxy-protocol", "v2", "--proxy-allow-from", "10.0.0.0/8,192.0.2.1",
        "--permit-obsolete-folding", "--strip-header-spaces", "--casefold-http-method",
        "--permit-unconventional-http-method", "--permit-unconventional-http-version",
        "app:app",
    )
    assert s.forwarder_headers == ["SCRIPT_NAME", "REMOTE_USER"]
    assert (s.header_map, s.proxy_protocol) == ("refuse", "v2")
    assert s.proxy_allow_ips == frozenset({"10.0.0.0/8", "192.0.2.1"})
    assert s.permit_obsolete_folding and s.strip_header_spaces and s.casefold_http_method
    assert s.permit_unconventional_http_method and s.permit_unconventional_http_version
    parse = wsgi_options(s).parse
    assert (parse.header_map, parse.proxy_protocol) == ("refuse", "v2")
    assert parse.forwarder_headers == frozenset({"SCRIPT_NAME", "REMOTE_USER"})


@pytest.mark.parametrize(
    ("argv", "mode"),
    [
        (["--proxy-protocol", "--workers", "2"], "auto"),  # bare, as in gunicorn
        (["--proxy-protocol=V1"], "v1"),
        (["--proxy-protocol", "true"], "auto"),
        (["--proxy-protocol", "off"], "off"),
        (["--proxy-protocol", "none"], "off"),
    ],
)
def test_proxy_protocol_forms(load, argv: list[str], mode: str) -> None:
    assert load("app:app", *argv).proxy_protocol == mode


@pytest.mark.parametrize(
    ("value", "mode"), [("True", "auto"), ("False", "off"), ("None", "off"), ("'v2'", "v2")]
)
def test_proxy_protocol_in_config_file(load, write, value: str, mode: str) -> None:
    write("gunicorn.conf.py", f"proxy_protocol = {value}\n")
    assert load("app:app").proxy_protocol == mode


def test_config_file(load, write) -> None:
    write(
        "gunicorn.conf.py",
        """
        secure_scheme_headers = {"X-SCHEME": "https"}
        forwarded_allow_ips = "10.0.0.0/8"
        forwarder_headers = ["SCRIPT_NAME"]
        header_map = "dangerous"
        """,
    )
    s = load("app:app")
    options = wsgi_options(s)
    assert dict(options.parse.secure_scheme_headers) == {"X-SCHEME": "https"}
    assert options.parse.header_map == "dangerous"
    assert options.forwarded_peers.allows(("10.2.3.4", 1))
    assert not options.forwarded_peers.allows(("11.0.0.1", 1))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--proxy-protocol", "v3"], "proxy_protocol = v3 (from command line): must be off, v1, v2 or auto"),
        (["--header-map", "keep"],
         "header_map = keep (from command line): must be one of drop, refuse, dangerous"),
        (["--proxy-allow-from", "10.0.0.1/8"],
         "proxy_allow_ips = 10.0.0.1/8 (from command line): "
         "'10.0.0.1/8' is not an IP address, a network or '*'"),
        (["--forwarded-allow-ips", "192.168.1.1/24"],
         "forwarded_allow_ips = 192.168.1.1/24 (from command line): "
         "'192.168.1.1/24' is not an IP address, a network or '*'"),
    ],
)
def test_errors(load, argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load("app:app", *argv)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("secure_scheme_headers = ['X-SCHEME']", "must be a dict of header names to values, not list"),
        ("secure_scheme_headers = {'X-SCHEME': 1}", "names and values must be strings"),
        ("proxy_protocol = 2", "must be off, v1, v2 or auto, not int"),
    ],
)
def test_config_file_errors(load, write, text: str, reason: str) -> None:
    write("gunicorn.conf.py", text + "\n")
    with pytest.raises(ConfigError) as info:
        load("app:app")
    assert reason in str(info.value)
