"""Server hooks: config-file only, gunicorn's names and arities, checked when settings load."""

from __future__ import annotations

import sys

import pytest

from unitcorn.settings import ConfigError, hook_names
from unitcorn.settings.callables import no_op
from unitcorn.settings.catalog import SETTINGS_BY_NAME

GUNICORN_HOOKS = {
    "on_starting": 1, "on_reload": 1, "when_ready": 1, "pre_fork": 2, "post_fork": 2,
    "post_worker_init": 1, "worker_int": 1, "worker_abort": 1, "pre_exec": 1, "pre_request": 2,
    "post_request": 4, "child_exit": 2, "worker_exit": 2, "nworkers_changed": 3, "on_exit": 1,
}


def test_hook_names_and_arity() -> None:
    assert set(hook_names()) == set(GUNICORN_HOOKS)
    for name, arity in GUNICORN_HOOKS.items():
        setting = SETTINGS_BY_NAME[name]
        assert len(setting.hook_params) == arity
        assert not setting.flags  # config file only, as in gunicorn


def test_defaults_are_no_ops(load) -> None:
    s = load("app:app")
    for name in hook_names():
        assert getattr(s, name) is no_op
    assert s.nworkers_changed(None, 2, None) is None


def test_hooks_from_config_file(load, write) -> None:
    write(
        "gunicorn.conf.py",
        """
        calls = []
        def on_starting(server):
            calls.append(("on_starting", server))
        def post_request(worker, req, environ, resp):
            pass
        def nworkers_changed(server, new_value, old_value=None):
            pass
        def when_ready(*args):
            pass
        class Hooks:
            def pre_fork(self, server, worker):
                pass
        pre_fork = Hooks().pre_fork
        """,
    )
    s = load("app:app")
    s.on_starting("arbiter")
    assert s.on_starting.__globals__["calls"] == [("on_starting", "arbiter")]
    assert s.post_request.__name__ == "post_request"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def on_starting():\n    pass\n",
         "must accept 1 positional argument (server), but its signature is ()"),
        ("def pre_fork(server):\n    pass\n",
         "must accept 2 positional arguments (server, worker), but its signature is (server)"),
        ("def post_request(worker, req):\n    pass\n",
         "must accept 4 positional arguments (worker, req, environ, resp)"),
        ("def when_ready(server, extra):\n    pass\n",
         "must accept 1 positional argument (server), but its signature is (server, extra)"),
        ("def on_exit(*, server):\n    pass\n", "must accept 1 positional argument (server)"),
        ("on_exit = 42\n", "must be a function taking (server)"),
        ("on_exit = 'no_such_hook_module_xyz.on_exit'\n",
         "cannot import 'no_such_hook_module_xyz'"),
        ("on_exit = 'os.no_such_function'\n", "module 'os' has no attribute 'no_such_function'"),
        ("on_exit = 'nodots'\n", "must be a function or 'module.function'"),
    ],
)
def test_bad_hooks_name_hook_and_file(load, write, source: str, message: str) -> None:
    path = write("gunicorn.conf.py", source)
    with pytest.raises(ConfigError) as info:
        load("app:app")
    error = info.value
    assert error.setting in GUNICORN_HOOKS
    assert error.source == str(path)
    assert message in error.message
    assert str(error).startswith(f"{error.setting} = ")


def test_hook_as_dotted_name(load, write, monkeypatch, tmp_path) -> None:
    write("myhooks.py", "def on_exit(server):\n    return 'bye'\n")
    write("gunicorn.conf.py", "on_exit = 'myhooks.on_exit'\npre_exec = 'myhooks:on_exit'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "myhooks", raising=False)
    s = load("app:app")
    assert s.on_exit(None) == "bye"
    assert s.pre_exec(None) == "bye"
    sys.modules.pop("myhooks", None)


def test_builtin_without_signature_is_accepted(load, write) -> None:
    write("gunicorn.conf.py", "on_exit = print\n")
    assert load("app:app").on_exit is print
