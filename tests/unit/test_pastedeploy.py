"""--paste's value, global conf and logging test (the loading itself: tests/process/test_paste.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from unitcorn.pastedeploy import global_conf, has_logging_config, normalise_target, split_target


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("/srv/site.ini", "/srv/site.ini"),
        ("/srv/site.ini#admin", "/srv/site.ini#admin"),
        ("config:/srv/site.ini#admin", "/srv/site.ini#admin"),
        # A relative value after the loader joined the launch directory to it:
        ("/launch/config:site.ini", "/launch/site.ini"),
        ("/launch/config:/srv/site.ini", "/srv/site.ini"),
        ("/launch/conf/../site.ini#", "/launch/site.ini"),
        # `config:` only as a scheme, not inside a name:
        ("/srv/myconfig:1/site.ini", "/srv/myconfig:1/site.ini"),
    ],
)
def test_normalise_target(value: str, target: str) -> None:
    assert normalise_target(value) == target


def test_split_target() -> None:
    assert split_target("/srv/site.ini#admin") == ("/srv/site.ini", "admin")
    assert split_target("/srv/site.ini") == ("/srv/site.ini", None)


def test_global_conf_splits_at_the_first_unescaped_equals_and_a_later_key_wins() -> None:
    pairs = ["FOO=1", "A\\=B=c=d", "FOO=2", "EMPTY="]
    assert global_conf(pairs) == {"FOO": "2", "A=B": "c=d", "EMPTY": ""}


def test_has_logging_config(tmp_path: Path) -> None:
    with_loggers = tmp_path / "a.ini"
    with_loggers.write_text("[app:main]\nuse = egg:x\n[loggers]\nkeys = root\n")
    without = tmp_path / "b.ini"
    without.write_text("[app:main]\nuse = egg:x\n")
    broken = tmp_path / "c.ini"
    broken.write_text("no section header\n")
    assert has_logging_config(str(with_loggers))
    assert not has_logging_config(str(without))
    assert not has_logging_config(str(broken))
    assert not has_logging_config(str(tmp_path / "missing.ini"))
