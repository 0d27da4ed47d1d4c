"""The type of every setting, as its converter returns it; mypy reads these for Settings.

Generated from catalog.py by fieldgen.py; do not edit. Regenerate with:
    python3 -m unitcorn.settings.fieldgen
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unitcorn.binds import Bind


class SettingFields:
    """Settings' attributes: one per setting in catalog.py.

    Annotations only: at run time the values come from Settings.__getattr__.
    """

    config: str | None
    wsgi_app: str | None
    bind: list[Bind]
    backlog: int
    reuse_port: bool
    workers: int
    max_workers: int
    worker_class: str
    threads: int
    worker_connections: int
    asgi_loop: str
    asgi_lifespan: str
    asgi_disconnect_grace_period: int
    websocket_max_message_size: int
    max_requests: int
    max_requests_jitter: int
    timeout: int
    graceful_timeout: int
    keepalive: int
    header_timeout: int
    body_timeout: int
    send_timeout: int
    upgrade_timeout: int
    control_socket: str | None
    control_socket_mode: int
    control_socket_disable: bool
    limit_request_line: int
    limit_request_fields: int
    limit_request_field_size: int
    preload_app: bool
    chdir: str
    paste: str | None
    raw_paste_global_conf: list[str]
    daemon: bool
    raw_env: list[str]
    pidfile: str | None
    user: int | None
    group: int | None
    umask: int
    forwarded_allow_ips: frozenset[str]
    secure_scheme_headers: dict[str, str]
    forwarder_headers: list[str]
    header_map: str
    proxy_protocol: str
    proxy_allow_ips: frozenset[str]
    permit_obsolete_folding: bool
    strip_header_spaces: bool
    permit_unconventional_http_method: bool
    permit_unconventional_http_version: bool
    casefold_http_method: bool
    root_path: str
    pythonpath: list[str]
    accesslog: str | None
    access_log_format: str
    errorlog: str
    loglevel: str
    capture_output: bool
    logconfig: str | None
    logconfig_dict: dict[str, Any]
    logconfig_json: str | None
    logger_class: str
    syslog: bool
    syslog_addr: str
    syslog_prefix: str | None
    syslog_facility: str
    disable_redirect_access_to_syslog: bool
    statsd_host: tuple[str, int] | str | None
    statsd_prefix: str
    dogstatsd_tags: str
    proc_name: str | None
    initgroups: bool
    sendfile: bool
    reload: bool
    reload_engine: str
    reload_extra_files: list[str]
    print_config: bool
    check_config: bool
    certfile: str | None
    keyfile: str | None
    cert_reqs: int
    ca_certs: str | None
    ciphers: str | None
    suppress_ragged_eofs: bool
    ssl_context: Callable[..., object]
    on_starting: Callable[..., object]
    on_reload: Callable[..., object]
    when_ready: Callable[..., object]
    pre_fork: Callable[..., object]
    post_fork: Callable[..., object]
    post_worker_init: Callable[..., object]
    worker_int: Callable[..., object]
    worker_abort: Callable[..., object]
    pre_exec: Callable[..., object]
    pre_request: Callable[..., object]
    post_request: Callable[..., object]
    child_exit: Callable[..., object]
    worker_exit: Callable[..., object]
    nworkers_changed: Callable[..., object]
    on_exit: Callable[..., object]
