"""Fuzz a live master's control socket (issue 11): whatever arrives, the master still answers
`status` and still serves HTTP after every example."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unitcorn.ctl import connect

# A hung master must fail this test, not hang the run (pytest-timeout is not installed).
WHOLE_TEST_TIMEOUT = 120

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
# Requests that look right, with values meant to hurt: huge, negative, wrong types. Never
# "upgrade" (it would replace the master under test) and never a valid large scale (slow forks).
hostile_commands = st.fixed_dictionaries({
    "command": st.sampled_from(["status", "scale", "nonsense", ""]) | st.text(max_size=10),
    "workers": st.integers(min_value=-(10**30), max_value=0)
    | st.integers(min_value=257, max_value=10**4000)
    | st.integers(min_value=1, max_value=2)
    | st.floats() | st.booleans() | st.text(max_size=10) | st.none(),
})
payloads = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=200).map(lambda b: b + b"\n"),
    json_values.map(lambda v: json.dumps(v).encode() + b"\n"),
    hostile_commands.map(lambda v: json.dumps(v).encode() + b"\n"),
    st.integers(1, 20000).flatmap(
        lambda n: st.sampled_from([b"[" * n, b"{" * n, b'{"a":' * n, b"[" * n + b"\n"])
    ),
    st.integers(1000, 20000).map(lambda n: b"x" * n + b"\n"),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    tmp_path = tmp_path_factory.mktemp("ctl-fuzz")
    control = tmp_path / "control.sock"
    running = Server(tmp_path, "testapps:route", "--control-socket", str(control), "--workers", "2")
    try:
        running.wait_ready()
        yield running, control
    finally:
        running.close()


def _connect(control: Path) -> socket.socket:
    return connect(str(control), 10)  # ctl's own: waits while the backlog is full


def _status(control: Path) -> dict:
    with _connect(control) as sock:
        sock.sendall(b'{"command": "status"}\n')
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return json.loads(answer)


@contextlib.contextmanager
def _hard_timeout(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"the fuzz test ran longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_the_control_socket_survives_anything(server: tuple[Server, Path]) -> None:
    running, control = server
    examples = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payload=payloads, idle_clients=st.integers(0, 24), half_close=st.booleans(),
           read_answer=st.booleans())
    def example(payload: bytes, idle_clients: int, half_close: bool, read_answer: bool) -> None:
        examples.append(payload)
        idle = [_connect(control) for _ in range(idle_clients)]
        try:
            with _connect(control) as sock:
                with contextlib.suppress(OSError):  # the master may close a line too long
                    sock.sendall(payload)
                    if half_close:
                        sock.shutdown(socket.SHUT_WR)
                    if read_answer and (half_close or payload.endswith(b"\n")):
                        sock.recv(65536)
            answer = _status(control)
            assert answer["ok"] is True and answer["status"]["pid"] == running.pid
            assert running.get("/")[0] == 200
        finally:
            for sock in idle:
                sock.close()

    with _hard_timeout(WHOLE_TEST_TIMEOUT):
        example()
    assert len(examples) >= 100  # hypothesis really ran (not replayed one stored failure)
    assert running.process.poll() is None
    assert "unexpected error" not in running.log()
    assert "Traceback" not in running.log()
