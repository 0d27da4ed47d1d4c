"""Socket activation: real sockets at fds 3.. in an exec'd child, LISTEN_PID as systemd sets it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from unitcorn.systemd.activation import (
    SD_LISTEN_FDS_START,
    InheritedSocket,
    address_key,
    listen_fds,
    socket_address_key,
)

pytestmark = pytest.mark.timeout(20)

CHILD = Path(__file__).with_name("activation_child.py")
REPO = Path(__file__).resolve().parents[3]
VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


@pytest.fixture
def listeners(tmp_path: Path) -> Iterator[list[socket.socket]]:
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(tmp_path / "admin.sock"))
    unix.listen()
    yield [tcp, unix]
    tcp.close()
    unix.close()


def run_child(
    sockets: list[socket.socket],
    env: dict[str, str],
    pid_offset: int = 0,
    unset: bool = True,
) -> dict:
    fds = [s.fileno() for s in sockets]
    spec = {"fds": fds, "env": env, "pid_offset": pid_offset, "unset": unset}
    environ = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    environ["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, str(CHILD), "exec", json.dumps(spec)],
        pass_fds=fds,
        env=environ,
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def expected_key(sock: socket.socket) -> list:
    # JSON turns the (family, address) tuple into lists.
    return json.loads(json.dumps(address_key(sock.family, sock.getsockname())))


def test_adopts_named_sockets_sets_cloexec_and_unsets_the_variables(listeners):
    report = run_child(listeners, {"LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"})
    assert report["sockets"] == [
        {"fd": 3, "name": "web", "key": expected_key(listeners[0])},
        {"fd": 4, "name": "admin", "key": expected_key(listeners[1])},
    ]
    # Inheritable as systemd hands them over, close-on-exec once adopted.
    assert report["inheritable_before"] == [True, True]
    assert report["inheritable_after"] == [False, False]
    assert report["environ"] == dict.fromkeys(VARIABLES)


def test_sockets_without_names_are_called_unknown(listeners):
    report = run_child(listeners, {"LISTEN_FDS": "2"})
    assert [s["name"] for s in report["sockets"]] == ["unknown", "unknown"]


def test_another_pid_gets_nothing_and_the_variables_still_go(listeners):
    report = run_child(listeners, {"LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"}, pid_offset=1)
    assert report["sockets"] == []
    assert report["inheritable_after"] == [True, True]
    assert report["environ"] == dict.fromkeys(VARIABLES)


def test_variables_can_be_kept(listeners):
    report = run_child(listeners, {"LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"}, unset=False)
    assert [s["name"] for s in report["sockets"]] == ["web", "admin"]
    assert report["environ"]["LISTEN_FDS"] == "2"
    assert report["environ"]["LISTEN_FDNAMES"] == "web:admin"
    assert report["environ"]["LISTEN_PID"] is not None


def test_a_descriptor_that_is_not_open_gives_nothing(listeners):
    report = run_child(listeners, {"LISTEN_FDS": "3"})
    assert report["sockets"] == []


# In-process cases: each is rejected before any descriptor is touched, so fds 3.. of the test
# process are safe.
MALFORMED = [
    {},
    {"LISTEN_FDS": "2"},
    {"LISTEN_PID": "{pid}"},
    {"LISTEN_PID": "{pid}", "LISTEN_FDS": "0"},
    {"LISTEN_PID": "{pid}", "LISTEN_FDS": "-2"},
    {"LISTEN_PID": "{pid}", "LISTEN_FDS": "two"},
    {"LISTEN_PID": "self", "LISTEN_FDS": "2"},
    {"LISTEN_PID": "", "LISTEN_FDS": "2"},
    {"LISTEN_PID": "{pid}", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web"},
    {"LISTEN_PID": "{pid}", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "web:admin"},
]


@pytest.mark.parametrize("template", MALFORMED)
def test_malformed_or_partial_variables_give_nothing(template):
    pid = 4242
    environ = {k: v.format(pid=pid) for k, v in template.items()}
    environ["PATH"] = "/bin"
    assert listen_fds(environ, pid=pid) == []
    assert environ == {"PATH": "/bin"}


def test_defaults_read_and_clean_the_process_environment(monkeypatch):
    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))
    monkeypatch.setenv("LISTEN_FDS", "1")
    assert listen_fds() == []
    assert not any(name in os.environ for name in VARIABLES)


def test_inherited_socket_is_a_value():
    assert InheritedSocket(SD_LISTEN_FDS_START, "web") == InheritedSocket(3, "web")


def test_address_key_of_inet_sockets():
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
        assert socket_address_key(sock.fileno()) == (socket.AF_INET, ("127.0.0.1", port))
        # The descriptor is still ours and still open.
        assert sock.getsockname()[1] == port


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_address_key_of_inet6_drops_flowinfo_and_scope():
    try:
        sock = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("::1 not configured")
    with sock:
        port = sock.getsockname()[1]
        assert socket_address_key(sock.fileno()) == (socket.AF_INET6, ("::1", port))


def test_address_key_of_unix_sockets(tmp_path):
    path = str(tmp_path / "s")
    name = f"unitcorn-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX) as named, socket.socket(socket.AF_UNIX) as abstract:
        named.bind(path)
        abstract.bind("\0" + name)
        assert socket_address_key(named.fileno()) == (socket.AF_UNIX, path)
        assert socket_address_key(abstract.fileno()) == (socket.AF_UNIX, "@" + name)
    left, right = socket.socketpair()
    with left, right:
        assert socket_address_key(left.fileno()) == (socket.AF_UNIX, "")


def test_address_key_of_something_else_raises():
    read, write = os.pipe()
    try:
        with pytest.raises(OSError):
            socket_address_key(read)
        os.fstat(read)  # still open
    finally:
        os.close(read)
        os.close(write)
