"""--initgroups: workers running as another user get that user's supplementary groups."""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: it adds a group and switches users"),
]

APP = '''
import os

def app(environ, start_response):
    body = " ".join(map(str, sorted(os.getgroups()))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.fixture
def nobody_in_a_group() -> Iterator[int]:
    """A fresh group with the unprivileged user `nobody` in it; removed afterwards."""
    name = f"ucgrp{os.getpid()}"
    subprocess.run(["groupadd", name], check=True, timeout=30)
    try:
        subprocess.run(["gpasswd", "-a", "nobody", name], check=True, timeout=30, capture_output=True)
        yield grp.getgrnam(name).gr_gid
    finally:
        subprocess.run(["groupdel", name], check=True, timeout=30)


@pytest.fixture
def readable_app() -> Iterator[Path]:
    """The app in a directory `nobody` can read (pytest's own tmp_path is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="unitcorn-initgroups-", dir="/tmp"))
    try:
        directory.chmod(0o755)
        (directory / "groupsapp.py").write_text(APP)
        (directory / "groupsapp.py").chmod(0o644)
        yield directory
    finally:
        shutil.rmtree(directory)


def test_initgroups_gives_workers_the_users_groups(start_server, nobody_in_a_group: int,
                                                   readable_app: Path) -> None:
    args = ("--user", "nobody", "--group", "nogroup", "--pythonpath", str(readable_app))
    plain = start_server("groupsapp:app", *args)
    assert str(nobody_in_a_group) not in plain.get("/")[1].split()
    plain.close()
    with_groups = start_server("groupsapp:app", *args, "--initgroups")
    assert str(nobody_in_a_group) in with_groups.get("/")[1].split()
