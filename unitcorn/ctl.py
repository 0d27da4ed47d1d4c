"""`unitcorn ctl`: ask a running master for its status, a reload, a new worker count or an upgrade.

It talks to the master's control socket (`--control-socket`, by default
`$RUNTIME_DIRECTORY/control.sock`, which is where the shipped unit puts it). `reload --wait` and
`upgrade` block until the master reports the outcome and exit 1 with its reason when it failed —
which is what makes `ExecReload=unitcorn ctl reload --wait` turn a failed reload into a failed
`systemctl reload`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
from collections.abc import Sequence
from typing import Any

EX_UNAVAILABLE = 69


class CtlError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unitcorn ctl", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", help="the master's control socket "
                        "(default: $RUNTIME_DIRECTORY/control.sock)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for an answer (default 120)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="print the master's pid, workers and last reload")
    reload = commands.add_parser("reload", help="reload the configuration (like HUP)")
    reload.add_argument("--wait", action="store_true",
                        help="wait until the new generation serves; exit 1 if the reload failed")
    scale = commands.add_parser("scale", help="set the number of workers")
    scale.add_argument("workers", type=int)
    commands.add_parser("upgrade", help="start a new master (like USR2), hand over, retire this one")
    return parser


def socket_path(explicit: str | None, environ: dict[str, str]) -> str:
    if explicit:
        return explicit
    runtime = environ.get("RUNTIME_DIRECTORY", "")
    if runtime:
        return runtime.split(":")[0].rstrip("/") + "/control.sock"
    raise CtlError("no control socket: pass --socket PATH (or run where RUNTIME_DIRECTORY is set)")


def connect(path: str, timeout: float) -> socket.socket:
    """Connect to a unix stream socket, waiting up to `timeout` while its backlog is full.

    Not `settimeout` before `connect`: that makes the socket non-blocking, and a unix socket
    then fails at once with EAGAIN when the master has not yet accepted the connections queued
    before ours. A blocking connect waits for room, bounded by SO_SNDTIMEO.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        seconds = int(timeout)
        limit = struct.pack("ll", seconds, int((timeout - seconds) * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        sock.connect(path)
        sock.settimeout(timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def request(path: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send one JSON request line; return the master's one-line JSON answer."""
    try:
        sock = connect(path, timeout)
    except OSError as exc:
        raise CtlError(f"cannot reach the master at {path}: {exc.strerror}") from exc
    with sock:
        sock.sendall(json.dumps(payload).encode() + b"\n")
        answer = bytearray()
        try:
            while not answer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError as exc:
            raise CtlError(f"no answer from the master within {timeout:g}s") from exc
    if not answer:
        raise CtlError("the master closed the connection without answering")
    result: dict[str, Any] = json.loads(answer)
    return result


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    payload: dict[str, Any] = {"command": args.command}
    if args.command == "reload":
        payload["wait"] = args.wait
    elif args.command == "scale":
        payload["workers"] = args.workers
    try:
        answer = request(socket_path(args.socket, dict(os.environ)), payload, args.timeout)
    except CtlError as exc:
        print(f"unitcorn ctl: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    if args.command == "status" and answer.get("ok"):
        for key, value in answer.get("status", {}).items():
            print(f"{key}: {value}")
        return 0
    stream = sys.stdout if answer.get("ok") else sys.stderr
    print(f"unitcorn ctl {args.command}: {answer.get('message', '')}", file=stream)
    return 0 if answer.get("ok") else 1
