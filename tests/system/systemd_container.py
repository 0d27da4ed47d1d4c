"""Boot a real systemd in a throwaway systemd-nspawn container, for tests.

Two parts:

* `build_tree(suite)` makes (once, cached, atomically, under a file lock) a minimal Debian tree of
  `suite` with systemd, python3 and the Python packages unitcorn uses: bookworm boots systemd 252
  (Debian 12), trixie systemd 257 (Debian 13, as RHEL 10). About 250 MB each, in
  /var/cache/unitcorn-test unless UNITCORN_CONTAINER_CACHE names another directory.
* `Container` boots that tree with `--volatile=overlay` (so the cache stays pristine), runs commands
  inside it, and on exit leaves nothing behind on the host: no process, no cgroup, no mount.

The recipe and its pitfalls are in ../shared/SYSTEMD-FACTS.md; the comments here say which pitfall
each step avoids. `python3 tests/system/systemd_container.py build-tree` builds the tree ahead of
a test run (CI can do this so that the first test does not pay for it); `build-tree trixie` that of
another suite.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, Self, TypeVar

T = TypeVar("T")

# The Debian suites the system suite runs on, each for the systemd it ships. The trees share one
# package list: every name below exists in both.
SUITES = {"bookworm": 252, "trixie": 257}
DEFAULT_SUITE = "bookworm"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-systemd",
    "python3-setproctitle",
    "python3-sdnotify",
    # The asgi worker's WebSockets (wsproto) and faster loop (uvloop), and what the asgi system
    # test serves (FastAPI) and drives it with (the websockets client).
    "python3-wsproto",
    "python3-uvloop",
    "python3-fastapi",
    "python3-websockets",
    "curl",
    "procps",
    "iproute2",
)

# Units that either wait for a terminal/network we do not have or run timers that would make the
# container busy at random moments; masked so boot reaches "running" quickly and stays quiet.
MASKED_UNITS = (
    "getty@.service",
    "console-getty.service",
    "serial-getty@.service",
    "systemd-networkd.service",
    "systemd-networkd.socket",
    "systemd-networkd-wait-online.service",
    "systemd-resolved.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
)

# mmdebstrap --customize-hook commands; "$1" is the tree. An empty machine-id makes systemd
# generate a fresh one at every boot; without etc/hostname nspawn's --hostname wins. Volatile
# journal storage keeps the overlay small, and RateLimitBurst=0 stops journald from dropping the
# lines a chatty test service writes.
CUSTOMIZE_HOOKS = (
    'rm -f "$1/etc/hostname"',
    ': > "$1/etc/machine-id"',
    *(f'ln -sf /dev/null "$1/etc/systemd/system/{unit}"' for unit in MASKED_UNITS),
    'mkdir -p "$1/etc/systemd/journald.conf.d"',
    (
        "printf '[Journal]\\nStorage=volatile\\nRateLimitBurst=0\\n'"
        ' > "$1/etc/systemd/journald.conf.d/unitcorn-test.conf"'
    ),
)

SOURCES_FILE = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_CACHE_DIR = Path("/var/cache/unitcorn-test")
# Where trees are kept instead of DEFAULT_CACHE_DIR (each is ~250 MB; a new recipe, a new tree).
CACHE_DIR_VARIABLE = "UNITCORN_CONTAINER_CACHE"
BUILD_TIMEOUT = 900.0
CONTAINER_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
RUNNING_STATES = ("running", "degraded")

# Where conftest.py mounts things inside the container (tests import these).
REPO_MOUNT = "/opt/unitcorn-src"  # the checkout, read-only: PYTHONPATH=/opt/unitcorn-src
SHARED_MOUNT = "/srv/shared"  # a writable host tmp dir, e.g. for unix sockets curl'd from the host


# --------------------------------------------------------------------------------------- tree


def read_mirror(sources: Path = SOURCES_FILE) -> str:
    """Return the first `URIs:` of the machine's deb822 sources, so CI and laptops use their own."""
    for line in sources.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "URIs" and value.split():
            return value.split()[0]
    raise RuntimeError(f"no 'URIs:' line in {sources}; cannot choose a Debian mirror")


def tree_recipe_hash(suite: str = DEFAULT_SUITE) -> str:
    """Name the tree after what is in it, so a changed package list builds a new tree."""
    recipe = {"suite": suite, "variant": "minbase", "packages": PACKAGES, "hooks": CUSTOMIZE_HOOKS}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def default_tree_path(suite: str = DEFAULT_SUITE) -> Path:
    """UNITCORN_SYSTEM_TREE_<SUITE> (e.g. ..._TRIXIE) when set; else tree-HASH in
    $UNITCORN_CONTAINER_CACHE, or in /var/cache/unitcorn-test.

    The bookworm tree also honours the older UNITCORN_SYSTEM_TREE.
    """
    configured = os.environ.get(f"UNITCORN_SYSTEM_TREE_{suite.upper()}")
    if not configured and suite == "bookworm":
        configured = os.environ.get("UNITCORN_SYSTEM_TREE")
    if configured:
        return Path(configured)
    cache_dir = Path(os.environ.get(CACHE_DIR_VARIABLE) or DEFAULT_CACHE_DIR)
    return cache_dir / f"tree-{tree_recipe_hash(suite)}"


def build_tree(
    path: Path | None = None, timeout: float = BUILD_TIMEOUT, suite: str = DEFAULT_SUITE
) -> Path:
    """Return a complete tree of `suite` at `path`, building it first if it is not there yet.

    The tree is built in a sibling scratch directory and renamed into place, so an existing
    `path` is always complete. A lock file serialises concurrent pytest processes: the second one
    waits, then finds the tree built.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}: expected one of {', '.join(SUITES)}")
    path = path or default_tree_path(suite)
    if path.is_dir():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f"{path.name}.lock", "w") as lock:
        _lock_with_deadline(lock, time.monotonic() + timeout)
        if path.is_dir():  # someone else built it while we waited
            return path
        for stale in path.parent.glob(f"{path.name}.tmp-*"):  # left by a killed build
            _remove_tree(stale)
        scratch = Path(tempfile.mkdtemp(prefix=f"{path.name}.tmp-", dir=path.parent))
        try:
            # scratch/tmp is mmdebstrap's TMPDIR, so a killed build leaves no gpg home in /tmp.
            (scratch / "tmp").mkdir()
            _run_mmdebstrap(scratch / "root", scratch / "tmp", timeout, suite)
            os.rename(scratch / "root", path)
        finally:
            _remove_tree(scratch)
    return path


def _lock_with_deadline(lock_file: IO[str], deadline: float) -> None:
    while True:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"another process holds {lock_file.name} too long") from None
            time.sleep(0.2)


def _run_mmdebstrap(target: Path, tmpdir: Path, timeout: float, suite: str) -> None:
    argv = ["mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
    argv += [f"--customize-hook={hook}" for hook in CUSTOMIZE_HOOKS]
    argv += [suite, str(target), read_mirror()]
    # A private mount namespace: mmdebstrap mounts /proc, /sys and /dev into the tree while it
    # works; if it is killed half-way those mounts die with the namespace instead of staying on
    # the host (where a later rm -rf of the tree could walk into them).
    argv = ["unshare", "--mount", "--propagation", "private", "--", *argv]
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    with tempfile.TemporaryFile("w+", dir=tmpdir) as output:
        proc = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            _kill_group_and_wait(proc)  # also on KeyboardInterrupt or pytest-timeout
        output.seek(0)
        tail = output.read()[-4000:]
    if code is None:
        raise TimeoutError(f"mmdebstrap did not finish within {timeout:g}s:\n{tail}")
    if code != 0:
        raise RuntimeError(f"mmdebstrap failed with {code}: {shlex.join(argv)}\n{tail}")


def _remove_tree(path: Path) -> None:
    # --one-file-system: never follow a mount that a crashed build might have left inside.
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], check=False, timeout=300)


def _kill_group_and_wait(proc: subprocess.Popen) -> None:
    """Kill what is left of a process group we started with start_new_session=True."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


# ---------------------------------------------------------------------------------- container


class Container:
    """One booted systemd; use as a context manager.

    `binds` and `ro_binds` are (host_path, container_path) pairs. Commands run through nsenter as
    root in all of the container's namespaces with an empty environment (PATH only), so what a
    test sees is what a unit would see, not pytest's environment.
    """

    def __init__(
        self,
        tree: Path,
        *,
        binds: Iterable[tuple[str | os.PathLike, str]] = (),
        ro_binds: Iterable[tuple[str | os.PathLike, str]] = (),
        name: str | None = None,
        log_path: Path | None = None,
        boot_timeout: float = 60.0,
        shutdown_timeout: float = 20.0,
    ) -> None:
        self.tree = Path(tree)
        self.name = name or f"unitcorn-{secrets.token_hex(4)}"
        self.binds = [(Path(host), ct) for host, ct in binds]
        self.ro_binds = [(Path(host), ct) for host, ct in ro_binds]
        self.boot_timeout = boot_timeout
        self.shutdown_timeout = shutdown_timeout
        self._own_log = log_path is None
        if log_path is None:
            fd, temp_name = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
            os.close(fd)
            log_path = Path(temp_name)
        self.log_path = log_path
        self.cgroups = [root / self.name for root in _cgroup_roots()]
        self.nspawn: subprocess.Popen | None = None
        self.leader: int | None = None
        self.boot_seconds: float | None = None
        self.shutdown_seconds: float | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        started = time.monotonic()
        deadline = started + self.boot_timeout
        for cgroup in self.cgroups:
            cgroup.mkdir()
        with open(self.log_path, "ab") as log:
            self.nspawn = subprocess.Popen(
                self._launch_argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,  # setsid: nspawn gets no terminal and its own group
            )
        self.leader = self._wait_for_leader(self.nspawn.pid, deadline)
        self._wait_for_boot(deadline)
        self.boot_seconds = time.monotonic() - started

    def _launch_argv(self) -> list[str]:
        nspawn = [
            "systemd-nspawn", "--quiet", f"--directory={self.tree}", f"--machine={self.name}",
            f"--hostname={self.name}", "--boot", "--private-network",
            # There is no host systemd/machined to register with: without these two nspawn fails
            # with "Failed to open system bus" / "Parent died too early".
            "--register=no", "--keep-unit",
            "--volatile=overlay",  # writes go to a tmpfs overlay; the cached tree stays pristine
            "--link-journal=no", "--resolv-conf=off", "--timezone=off", "--console=read-only",
        ]
        nspawn += [f"--bind={_bind_spec(host, ct)}" for host, ct in self.binds]
        nspawn += [f"--bind-ro={_bind_spec(host, ct)}" for host, ct in self.ro_binds]
        # The shell joins our cgroups *before* exec'ing anything, so no process of the container
        # can start outside them (stop() relies on the cgroups to find every leftover). It then
        # mounts a private tmpfs on /run/systemd in a private mount namespace: nspawn writes
        # /run/systemd/nspawn/... and would otherwise leave that on the host.
        join = " ".join(f'echo $$ > "{cgroup}/cgroup.procs" &&' for cgroup in self.cgroups)
        script = (
            f"{join} exec unshare --mount --propagation private -- sh -c "
            "'mkdir -p /run/systemd && mount -t tmpfs -o mode=0755 tmpfs /run/systemd "
            "&& exec \"$@\"' sh \"$@\""
        )
        return ["sh", "-c", script, "sh", *nspawn]

    def _wait_for_leader(self, nspawn_pid: int, deadline: float) -> int:
        """Find the container's PID 1 and wait until it has exec'd systemd.

        Before the exec the process is still nspawn's inner child setting up mounts; entering its
        namespaces then would run commands in a half-built root.
        """

        def leader_running_systemd() -> int | None:
            self._raise_if_nspawn_died()
            for pid in _children(nspawn_pid):
                status = _proc_status(pid)
                if status.get("NSpid", "").split()[-1:] == ["1"]:
                    return pid if _read(f"/proc/{pid}/comm").strip() == "systemd" else None
            return None

        return self.wait_for(leader_running_systemd, deadline - time.monotonic(),
                             f"PID 1 of {self.name} to exec systemd", interval=0.01)

    def _wait_for_boot(self, deadline: float) -> None:
        # is-system-running --wait fails at once ("offline") while PID 1 has not yet opened its
        # private socket, so retry it until the deadline; it blocks until boot finishes.
        last = ""
        while time.monotonic() < deadline:
            self._raise_if_nspawn_died()
            left = max(deadline - time.monotonic(), 0.1)
            try:
                done = self.run("systemctl", "is-system-running", "--wait", check=False,
                                timeout=left)
            except subprocess.TimeoutExpired:
                break
            last = done.stdout.strip()
            if last in RUNNING_STATES:
                return
            if last in ("maintenance", "stopping"):
                break
            time.sleep(0.05)
        failed = self.run("systemctl", "--failed", "--no-legend", check=False, timeout=10).stdout
        raise TimeoutError(
            f"container {self.name} did not reach running/degraded within {self.boot_timeout}s "
            f"(is-system-running said {last!r}); failed units:\n{failed}\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """Power off and remove every trace; safe to call twice and after a failed start."""
        started = time.monotonic()
        try:
            self._power_off()
        finally:
            self._kill_cgroups()
            self._remove_cgroups()
            if self._own_log:
                self.log_path.unlink(missing_ok=True)
        if self.shutdown_seconds is None and self.leader is not None:
            self.shutdown_seconds = time.monotonic() - started

    def _power_off(self) -> None:
        if self.nspawn is None or self.nspawn.poll() is not None:
            return
        if self.leader is None:
            # Start failed before PID 1 was known: nothing to power off gracefully. Whatever nspawn
            # already spawned is in our cgroups, where _kill_cgroups finds it.
            _kill_quietly(self.nspawn.pid)
            self.nspawn.wait(timeout=5)
            return
        if _is_alive(self.leader):
            os.kill(self.leader, signal.SIGRTMIN + 4)  # systemd's "poweroff" signal
            try:
                self.nspawn.wait(timeout=self.shutdown_timeout)
                return
            except subprocess.TimeoutExpired:
                pass
            _kill_quietly(self.leader)  # PID 1 of the pid namespace: takes the namespace along
        try:
            self.nspawn.wait(timeout=5)
        except subprocess.TimeoutExpired:
            # Killing nspawn alone would leave the container running in its own pid namespace;
            # by now its PID 1 has already been killed above.
            _kill_quietly(self.nspawn.pid)
            self.nspawn.wait(timeout=5)

    def _kill_cgroups(self, timeout: float = 10.0) -> None:
        def nothing_alive() -> bool:
            pids = [pid for cgroup in self.cgroups for pid in _cgroup_pids(cgroup)]
            alive = [pid for pid in pids if _is_alive(pid)]
            for pid in alive:
                _kill_quietly(pid)
            return not alive

        self.wait_for(nothing_alive, timeout, f"processes of {self.name} to die", interval=0.02)

    def _remove_cgroups(self, timeout: float = 10.0) -> None:
        def removed() -> bool:
            for cgroup in self.cgroups:
                if not cgroup.exists():
                    continue
                # Depth first: a cgroup cannot be removed while it has children. Only
                # directories are removed; the files in them are the kernel's interface.
                for sub, _, _ in sorted(os.walk(cgroup), key=lambda e: -e[0].count("/")):
                    try:
                        os.rmdir(sub)
                    except FileNotFoundError:
                        pass
                    except OSError:  # EBUSY until the last task has finished exiting
                        return False
            return True

        self.wait_for(removed, timeout, f"cgroups {self.cgroups} to be removable", interval=0.02)

    def _raise_if_nspawn_died(self) -> None:
        if self.nspawn is not None and self.nspawn.poll() is not None:
            raise RuntimeError(
                f"systemd-nspawn for {self.name} exited with {self.nspawn.returncode}\n"
                f"{self._log_tail()}"
            )

    def _log_tail(self, size: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return f"--- last of {self.log_path} ---\n{text[-size:]}"

    def is_running(self) -> bool:
        return self.nspawn is not None and self.nspawn.poll() is None

    @functools.cached_property
    def systemd_version(self) -> int:
        """The major version of the container's systemd: 252 on bookworm, 257 on trixie."""
        first = self.run("systemctl", "--version").stdout.split("\n", 1)[0]  # "systemd 257 (257.13-1)"
        return int(first.split()[1])

    def host_path(self, path_in_container: str) -> Path:
        """The host path of a file under one of the container's bind mounts."""
        for host, ct in self.binds + self.ro_binds:
            ct = ct.rstrip("/")
            if path_in_container == ct or path_in_container.startswith(ct + "/"):
                return host / path_in_container[len(ct):].lstrip("/")
        raise ValueError(f"{path_in_container} is under none of the bind mounts of {self.name}")

    # -- commands -----------------------------------------------------------------------------

    def run(
        self,
        *argv: str,
        check: bool = True,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the container as root, with only PATH (plus `env`) set."""
        if self.leader is None or not self.is_running():
            raise RuntimeError(f"container {self.name} is not running")
        assignments = [f"{key}={value}" for key, value in (env or {}).items()]
        full = ["nsenter", f"--target={self.leader}", "--all", "--",
                "env", "-i", f"PATH={CONTAINER_PATH}", *assignments, *argv]
        # A session of its own, so a timeout can kill nsenter *and* the child it forked into the
        # container's pid namespace.
        proc = subprocess.Popen(full, stdin=subprocess.PIPE if input is not None else
                                subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(input, timeout=timeout)
        except BaseException:
            _kill_group_and_wait(proc)
            raise
        done = subprocess.CompletedProcess(list(argv), proc.returncode, stdout, stderr)
        if check and done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, shlex.join(argv), stdout, stderr)
        return done

    def systemctl(self, *args: str, check: bool = True,
                  timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-pager", *args, check=check, timeout=timeout)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """`systemctl show -p A,B unit` as a dict (all properties when none are named)."""
        args = ["show", unit] + (["-p", ",".join(props)] if props else [])
        text = self.systemctl(*args).stdout
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def journal(self, unit: str, output: str = "json", *args: str) -> list[dict[str, Any]]:
        """The unit's journal entries, one dict per entry (`output` is json or json-seq)."""
        if output not in ("json", "json-seq"):
            raise ValueError(f"journal() parses json output only, not {output!r}; "
                             "use journal_text() for the others")
        text = self.run("journalctl", "--no-pager", "-u", unit, "-o", output, *args).stdout
        return [json.loads(line.strip("\x1e")) for line in text.splitlines() if line.strip()]

    def journal_text(self, unit: str, output: str = "short", *args: str) -> str:
        return self.run("journalctl", "--no-pager", "-u", unit, "-o", output, *args).stdout

    def write_file(self, path: str, text: str, mode: int = 0o644) -> None:
        """Write a file inside the container (into its overlay; gone after shutdown).

        Through a shell in the container rather than /proc/LEADER/root, so absolute symlinks in
        `path` resolve inside the container, not on the host.
        """
        self.run("sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"',
                 "sh", path, f"{mode:o}", input=text)

    def daemon_reload(self) -> None:
        self.systemctl("daemon-reload")

    def wait_for(self, predicate: Callable[[], T | None], timeout: float, what: str,
                 interval: float = 0.05) -> T:
        return wait_for(predicate, timeout, what, interval)


def wait_for(
    predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll until predicate() returns something truthy, and return it; TimeoutError names `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------- host-side helpers


def _cgroup_roots() -> list[Path]:
    """Where to make our own cgroups: under our current one, in every hierarchy nspawn uses.

    On a v1 "hybrid" host that is the named `systemd` hierarchy and the cgroup2 `unified` one; on
    a pure cgroup2 host it is /sys/fs/cgroup itself.
    """
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        own[controllers] = path.lstrip("/")
    base = Path("/sys/fs/cgroup")
    if (base / "systemd").is_dir():
        roots = [base / "systemd" / own.get("name=systemd", "")]
        if (base / "unified").is_dir():
            roots.append(base / "unified" / own.get("", ""))
        return roots
    return [base / own.get("", "")]


def _cgroup_pids(cgroup: Path) -> list[int]:
    pids = []
    for sub, _, files in os.walk(cgroup):
        if "cgroup.procs" in files:
            pids += [int(pid) for pid in _read(f"{sub}/cgroup.procs").split()]
    return pids


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _proc_status(int(entry)).get("PPid") == str(pid):
            found.append(int(entry))
    return found


def _proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in _read(f"/proc/{pid}/status").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _is_alive(pid: int) -> bool:
    """True unless the process is gone or a zombie (the host's PID 1 may reap those late)."""
    state = _proc_status(pid).get("State", "")
    return bool(state) and not state.startswith(("Z", "X"))


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _read(path: str) -> str:
    """Read a /proc or /sys file; empty when the process or cgroup has just gone away."""
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _bind_spec(host: Path, ct: str) -> str:
    if ":" in str(host) or ":" in ct:
        raise ValueError(f"nspawn bind paths cannot contain ':': {host}:{ct}")
    return f"{host}:{ct}"


def host_leftovers(name: str) -> list[str]:
    """Everything of container `name` still visible on the host (for tests of the harness)."""
    found = []
    for entry in os.listdir("/proc"):
        in_cgroup = entry.isdigit() and f"/{name}" in _read(f"/proc/{entry}/cgroup")
        if in_cgroup and _is_alive(int(entry)):
            found.append(f"process {entry}: {_read(f'/proc/{entry}/cmdline')!r}")
    for root in Path("/sys/fs/cgroup").iterdir():
        found += [f"cgroup {path}" for path in root.rglob(name)]
    for line in _read("/proc/self/mountinfo").splitlines():
        if name in line:
            found.append(f"mount {line}")
    return found


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] != "build-tree" or len(argv) > 2 or argv[1:2] and argv[1] not in SUITES:
        print(f"usage: {sys.argv[0]} build-tree [{'|'.join(SUITES)}]", file=sys.stderr)
        return 2
    started = time.monotonic()
    path = build_tree(suite=argv[1] if len(argv) == 2 else DEFAULT_SUITE)
    print(f"{path} ready after {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
