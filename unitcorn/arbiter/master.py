"""The master process: one loop that waits for signals, worker messages and deadlines, then acts.

Every rule lives in `decisions.py`; this module only carries decisions out (fork, kill, waitpid,
pidfile, listeners). The loop wakes on a signal byte, a worker's "booted" message, the old
master's exit (after an upgrade), or the nearest deadline — never on a fixed polling interval.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import sys
import time
from typing import Any

from unitcorn import __version__
from unitcorn.app import load_app
from unitcorn.arbiter import decisions
from unitcorn.arbiter.code_watcher import CodeWatcher
from unitcorn.arbiter.control import ControlServer
from unitcorn.arbiter.decisions import Command, WorkerHandle
from unitcorn.arbiter.descriptors import close_all_but, worker_descriptors
from unitcorn.arbiter.lifecycle import Lifecycle, Lifecycles
from unitcorn.arbiter.reload import Reloader, check_worker_bounds
from unitcorn.arbiter.statsd_plugin import WorkerCountGauge
from unitcorn.arbiter.upgrade import Upgrader
from unitcorn.hooks import call_hook
from unitcorn.logs import ERROR_LOGGER, reopen_logs, set_log_context
from unitcorn.pidfile import remove_pidfile, write_pidfile
from unitcorn.process.heartbeat import BoardFull, HeartbeatBoard
from unitcorn.process.signals import SignalQueue, fork_with_signals_blocked
from unitcorn.proctitle import set_title
from unitcorn.sockets import Listener, explicit_umask, open_listeners
from unitcorn.workers import worker_class_for

# How long a worker gets between SIGABRT (worker_abort hook) and SIGKILL.
ABORT_GRACE = 2.0
# After fork (or a pipe for it) failed for want of memory or descriptors, try again this much later.
SPAWN_RETRY = 1.0


class Master:
    """gunicorn's Arbiter, reorganised: state here, rules in decisions, effects in the loop."""

    def __init__(
        self,
        settings: Any,
        argv: list[str],
        environ: dict[str, str],
        inherited: list[Listener],
        *,
        start_cwd: str,
        old_master_pid: int = 0,
        upgrade_link: socket.socket | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        check_worker_bounds(settings)  # ConfigError: exit 78 before anything is opened
        self.settings = settings
        self.argv = argv
        # The environment as the operator gave it, minus our control variables: HUP restores it
        # before re-applying --env, and an upgrade hands it to the new master.
        self.environ_orig = dict(environ)
        self.start_cwd = start_cwd
        # Sockets handed over by systemd or by the master we upgrade from; binds reuse them.
        self.inherited = inherited
        self.listeners: list[Listener] = []
        self.old_master_pid = old_master_pid
        path = None if settings.control_socket_disable else settings.control_socket
        self.control = ControlServer(path, settings.control_socket_mode) if path else None
        # Plug-ins: systemd (given), the control socket, the statsd workers gauge, --reload.
        watcher = CodeWatcher(settings) if settings.reload else None
        plugins = (lifecycle, self.control, WorkerCountGauge(), watcher)
        self.lifecycle = Lifecycles(*(m for m in plugins if m is not None))
        self.own_pid = os.getpid()
        self.log = logging.getLogger(ERROR_LOGGER)
        self.workers: dict[int, WorkerHandle] = {}
        self.generation = 1
        self.num_workers = settings.workers
        self.new_master_pid = 0
        self.app: Any = None
        self.exit_code = 0
        self.is_ready = False
        self.stop_deadline: float | None = None
        self._worker_age = 0
        self._pidfile_path: str | None = None
        # Twice the bound: during a reload both generations are alive (see check_worker_bounds).
        self._board = HeartbeatBoard(2 * settings.max_workers)
        # Back-off after workers that died before booting (see decisions.spawn_delay).
        self._boot_failures = decisions.BootFailures(generation=self.generation)
        self._spawn_deadline: float | None = None
        self._spawn_delay_logged: float | None = None
        self.selector = selectors.DefaultSelector()
        self._signals: SignalQueue | None = None
        self._ready_reader, self._ready_writer = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._life_reader, self._life_writer = os.pipe2(os.O_CLOEXEC)
        self.reloader = Reloader(self)
        self.upgrader = Upgrader(self, upgrade_link)

    # gunicorn's names, for hooks written against the Arbiter.
    @property
    def cfg(self) -> Any:
        return self.settings

    @property
    def WORKERS(self) -> dict[int, Any]:
        return {pid: handle.process for pid, handle in self.workers.items()}

    @property
    def LISTENERS(self) -> list[Listener]:
        return self.listeners

    @property
    def address(self) -> list[Any]:
        """The configured binds as gunicorn's cfg.address: (host, port), a unix path, or an fd."""
        return [gunicorn_address(bind) for bind in self.settings.bind]

    @property
    def timeout(self) -> int:
        return self.settings.timeout

    @property
    def worker_class(self) -> type:
        return worker_class_for(self.settings)

    @property
    def worker_age(self) -> int:
        return self._worker_age

    @property
    def pid(self) -> int:
        return self.own_pid

    @property
    def master_pid(self) -> int:
        """The old master's pid while this master is the new one of an upgrade, else 0."""
        return self.old_master_pid

    @property
    def reexec_pid(self) -> int:
        """The new master's pid while an upgrade started here runs, else 0."""
        return self.new_master_pid

    @property
    def master_name(self) -> str:
        return "Master.2" if self.old_master_pid else "Master"

    # ---- start and the loop -------------------------------------------------------------

    def run(self) -> int:
        """Serve until told to stop; return the process exit status."""
        self._signals = SignalQueue(decisions.HANDLED_SIGNALS)
        self.selector.register(self._signals, selectors.EVENT_READ, self._handle_signals)
        self.selector.register(self._ready_reader, selectors.EVENT_READ, self._read_boot_messages)
        self.upgrader.watch_old_master()
        set_log_context(UNITCORN_GENERATION=self.generation)  # journald field of our entries
        self.log.info("Starting unitcorn %s", __version__)
        # gunicorn's Arbiter calls this as it first sets its worker count, before on_starting.
        call_hook(self.settings, "nworkers_changed", self, self.num_workers, None)
        call_hook(self.settings, "on_starting", self)
        self.listeners = open_listeners(
            self.reloader.binds_for(self.settings, self.inherited),
            self.settings.backlog,
            self.settings.reuse_port,
            inherited=self.inherited,
            owner=(self.settings.user, self.settings.group),
            umask=explicit_umask(self.settings),
        )
        for listener in self.inherited:
            if listener not in self.listeners:
                # The old master (or nobody) still owns its path; just let go of our copy.
                self.log.info("closing inherited socket no longer bound address=%s", listener)
                listener.close(unlink=False)
        self.inherited = []
        for listener in self.listeners:
            self.log.info("Listening at: %s (%d)", listener, listener.fileno())
        self.log.info("Using worker: %s", self.settings.effective_worker_class)
        if self.settings.preload_app:
            self.app = load_app(self.settings.app_uri, self.settings.pythonpath, self.settings.chdir)
        self.update_pidfile(is_starting=True)
        self.set_title()
        # Opened once nothing above can fail: a server that never started leaves no socket.
        # A new master of an upgrade opens it when it becomes the main process.
        if self.upgrader.link is None and self.control is not None:
            self.control.open(self.selector, self)
        try:
            self._guarded(self._manage_workers)
            while not self._is_finished():
                self._step()
        finally:
            self._finish()
        return self.exit_code

    def _step(self) -> None:
        for key, _ in self.selector.select(self._select_timeout()):
            self._guarded(key.data)
        self._guarded(self._reap_children)
        now = time.monotonic()
        self._guarded(lambda: self._enforce_deadlines(now))
        self._guarded(lambda: self.upgrader.check_deadline(now))
        if self.stop_deadline is None:
            self._guarded(self._manage_workers)
        self._guarded(lambda: self.lifecycle.tick(self, now))

    def _guarded(self, action: Any) -> None:
        """Run one event's handling; a bug in it is logged, and the master goes on serving.

        The master exits only on purpose (`stop`, which ends the loop). Only Exception is caught:
        SystemExit and KeyboardInterrupt still end the process as they mean to.
        """
        try:
            action()
        except Exception:
            if os.getpid() != self.own_pid:
                # A forked child whose entry function leaked an exception must never run the
                # master's loop (its own paths end in os._exit; this is the backstop).
                os._exit(1)
            self.log.exception("master: unexpected error handling an event; carrying on")

    def _select_timeout(self) -> float | None:
        deadlines = [
            decisions.next_heartbeat_deadline(
                self.workers.values(), self.settings.timeout, self._board.last_beat
            ),
            self.stop_deadline,
            self.lifecycle.next_deadline(self),
            self.upgrader.deadline,
            self._spawn_deadline if self.stop_deadline is None else None,
        ]
        nearest = min((d for d in deadlines if d is not None), default=None)
        if nearest is None:
            return None
        return max(0.0, nearest - time.monotonic())

    def _is_finished(self) -> bool:
        return self.stop_deadline is not None and not self.workers

    # ---- signals --------------------------------------------------------------------------

    def _handle_signals(self) -> None:
        assert self._signals is not None
        for signum in self._signals.drain():
            command = decisions.command_for_signal(signum, is_daemon=self.settings.daemon)
            if command not in (Command.REAP, Command.IGNORE):
                self.log.info("Handling signal: %s", signal.Signals(signum).name[3:].lower())
            self.handle_command(command, signum)

    def handle_command(self, command: Command, signum: int = 0) -> None:
        """Carry out one command (from a signal, or from `unitcorn ctl`)."""
        if self.stop_deadline is not None:
            if command is Command.STOP_QUICK:
                self._signal_workers(signal.SIGQUIT)
            return
        if command is Command.RELOAD:
            self.reloader.reload()
        elif command is Command.STOP_GRACEFUL:
            self.stop(graceful=True)
        elif command is Command.STOP_QUICK:
            self.stop(graceful=False)
        elif command in (Command.SCALE_UP, Command.SCALE_DOWN):
            refusal = self.set_worker_count(decisions.scaled_worker_count(self.num_workers, command))
            if refusal:
                self.log.warning("%s ignored: %s", signal.Signals(signum).name, refusal)
        elif command is Command.REOPEN_LOGS:
            reopen_logs()
            self._signal_workers(signal.SIGUSR1)
        elif command is Command.REEXEC:
            self.upgrader.reexec()
        elif command is Command.STOP_WORKERS:
            self.log.info("stopping all workers (WINCH) master stays")
            self.set_worker_count(0)
        elif command is Command.IGNORE and signum == signal.SIGWINCH:
            self.log.debug("SIGWINCH ignored: not daemonized")

    def set_worker_count(self, count: int) -> str | None:
        """Run `count` workers from now on; returns why not (out of bounds), or None."""
        refusal = decisions.worker_count_refusal(count, self.settings.max_workers)
        if refusal:
            return refusal
        old = self.num_workers
        if count == old:
            self.log.info("worker count unchanged workers=%d", old)
            return None
        self.num_workers = count
        self.log.info("worker count changed workers=%d previous=%d", count, old)
        call_hook(self.settings, "nworkers_changed", self, count, old)
        self.lifecycle.status_changed(self)
        return None

    # ---- workers --------------------------------------------------------------------------

    def _manage_workers(self) -> None:
        now = time.monotonic()
        actions = decisions.plan_workers(self.workers.values(), self.num_workers, self.generation)
        may_spawn = self._may_spawn(now, any(isinstance(a, decisions.Spawn) for a in actions))
        for action in actions:
            if isinstance(action, decisions.Spawn):
                if not may_spawn:
                    continue
                if not self._try_spawn_worker(action.generation, now):
                    may_spawn = False  # the rest would fail the same way
            elif isinstance(action, decisions.Retire):
                self.retire_worker(action.pid, now)
        self.reloader.check_done()

    def _try_spawn_worker(self, generation: int, now: float) -> bool:
        """Spawn one worker; on a full heartbeat board or a failed fork say so and return False.

        Board full: retiring workers still hold their slots; the next exit (SIGCHLD) frees one
        and the loop spawns again. Fork or pipe failed (EAGAIN, ENOMEM, EMFILE …): the master
        keeps serving with the workers it has, and retries a second later — unless the worker
        was for a reload's new generation, which then fails as a reload (the old one serves on).
        """
        try:
            self._spawn_worker(generation)
        except BoardFull as exc:
            self.log.warning("worker spawn postponed until a worker exits reason=%s", exc)
            return False
        except OSError as exc:
            self.log.error("cannot start a worker reason=%s", exc)
            if self.reloader.is_reloading and generation == self.generation:
                self.reloader.revert(f"cannot start a worker: {exc}")
            else:
                # The same wait as a back-off step, already explained by the line above.
                self._spawn_deadline = self._spawn_delay_logged = now + SPAWN_RETRY
            return False
        return True

    def _may_spawn(self, now: float, is_wanted: bool) -> bool:
        """Whether the back-off after boot failures lets workers be spawned now; the loop's
        select timeout includes the deadline, so the spawn happens when it passes."""
        failures = decisions.for_generation(self._boot_failures, self.generation)
        if failures is not self._boot_failures:  # a reload: its workers get a fresh start
            self._boot_failures = failures
            self._spawn_deadline = None
        if self._spawn_deadline is not None and now >= self._spawn_deadline:
            self._spawn_deadline = None
        if self._spawn_deadline is None:
            return True
        if is_wanted and self._spawn_delay_logged != self._spawn_deadline:
            self._spawn_delay_logged = self._spawn_deadline  # once per step, not per loop turn
            self.log.warning(
                "spawn delayed seconds=%.1f reason=boot-failures count=%d",
                decisions.spawn_delay(failures),
                failures.count,
            )
        return False

    def _count_boot_failure(self, handle: WorkerHandle) -> None:
        """Before its slot is released (it holds the request count): did `handle` fail to boot?"""
        now = time.monotonic()
        failures = decisions.after_worker_exit(
            self._boot_failures,
            handle,
            lambda w: self._board.requests_served(w.slot),
            self.workers.values(),
            self.generation,
            now,
        )
        if failures != self._boot_failures:
            delay = decisions.spawn_delay(failures)
            self._spawn_deadline = now + delay if delay else None
        self._boot_failures = failures

    def _spawn_worker(self, generation: int) -> None:
        slot = self._board.allocate()
        try:
            self._fork_worker(generation, slot)
        except BaseException:
            self._board.release(slot)
            raise

    def _fork_worker(self, generation: int, slot: int) -> None:
        self._worker_age += 1
        worker = worker_class_for(self.settings)(
            age=self._worker_age,
            ppid=self.own_pid,
            listeners=self.listeners,
            settings=self.settings,
            app=self.app,
            heartbeat=self._board.pen(slot),
            boot_fd=self._ready_writer,
            life_fd=self._life_reader,
            generation=generation,
        )
        call_hook(self.settings, "pre_fork", self, worker)
        pid, worker.saved_signal_mask = fork_with_signals_blocked(decisions.HANDLED_SIGNALS)
        if pid:
            worker.pid = pid
            self.workers[pid] = WorkerHandle(
                pid, self._worker_age, generation, slot, time.monotonic(), process=worker
            )
            self.log.debug("worker spawned pid=%d generation=%d", pid, generation)
            return
        self._run_worker_child(worker)

    def _run_worker_child(self, worker: Any) -> None:
        """In the forked child: never return into the master's stack."""
        code = 1
        try:
            self.become_child()
            # Before any hook or app code: the worker must never hold the master's channels.
            close_all_but(worker_descriptors(worker.listeners, worker.boot_fd, worker.life_fd))
            worker.pid = os.getpid()
            call_hook(self.settings, "post_fork", self, worker)
            code = worker.run()
        except BaseException:
            with contextlib.suppress(BaseException):
                self.log.exception("worker crashed pid=%d", os.getpid())
        finally:
            with contextlib.suppress(BaseException):
                call_hook(self.settings, "worker_exit", self, worker)
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def become_child(self) -> None:
        """Drop what only the master may hold: signal handlers, its selector, the pipes' far ends."""
        if self._signals is not None:
            self._signals.restore()
        self.selector.close()
        for fd in (self._ready_reader, self._life_writer, self.upgrader.old_master_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def retire_worker(self, pid: int, now: float) -> None:
        handle = self.workers.get(pid)
        if handle is None or handle.is_retiring:
            return
        handle.retire_deadline = now + self.settings.graceful_timeout
        self.kill(pid, signal.SIGTERM)

    def _signal_workers(self, signum: int) -> None:
        for pid in list(self.workers):
            self.kill(pid, signum)

    def kill(self, pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass  # already gone; waitpid will tell us why

    def _read_boot_messages(self) -> None:
        """Workers write their pid to the boot pipe once they can serve."""
        try:
            data = os.read(self._ready_reader, 65536)
        except BlockingIOError:
            return
        for line in data.split():
            handle = self.workers.get(int(line))
            if handle is None or handle.is_booted:
                continue
            handle.is_booted = True
            self.log.info(
                "Booting worker with pid: %d generation=%d", handle.pid, handle.generation
            )
        if not self.is_ready and self._current_generation_booted():
            self.is_ready = True
            self.log.info("server ready workers=%d", self.num_workers)
            call_hook(self.settings, "when_ready", self)
            self.lifecycle.ready(self)
            if self.upgrader.link is not None:
                self.upgrader.tell_old_master(b"ready\n")
        self.lifecycle.status_changed(self)

    def _current_generation_booted(self) -> bool:
        return self.booted_workers() >= self.num_workers

    def _reap_children(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.new_master_pid:
                self.new_master_pid = 0
                info = decisions.classify_exit(status)
                self.log.info("upgraded master exited pid=%d reason=%s", pid, info.reason)
                self.upgrader.new_master_exited(info)
                continue
            handle = self.workers.pop(pid, None)
            if handle is None:
                continue
            self._count_boot_failure(handle)
            self._board.release(handle.slot)
            self._on_worker_exit(handle, decisions.classify_exit(status))

    def _on_worker_exit(self, handle: WorkerHandle, info: decisions.ExitInfo) -> None:
        expected = handle.is_retiring or self.stop_deadline is not None
        level = logging.INFO if expected or info.code == 0 else logging.ERROR
        self.log.log(
            level,
            "worker exited pid=%d code=%s reason=%s generation=%d",
            handle.pid,
            info.code if info.code is not None else "-",
            info.reason,
            handle.generation,
        )
        call_hook(self.settings, "child_exit", self, handle.process)
        # A retiring worker was told to go (e.g. the rest of a failed reload's generation): how it
        # ends no longer says anything about whether the server can run.
        if info.halts_with is None or self.stop_deadline is not None or handle.is_retiring:
            return
        if self.reloader.is_reloading and handle.generation == self.generation:
            self.reloader.revert(f"new worker failed: {info.reason} (exit {info.code})")
            return
        self.log.error("halting: a worker could not start reason=%s", info.reason)
        self.stop(graceful=False, exit_code=info.halts_with)

    def _enforce_deadlines(self, now: float) -> None:
        actions = decisions.heartbeat_actions(
            self.workers.values(), now, self.settings.timeout, self._board.last_beat
        )
        for action in actions:
            assert not isinstance(action, decisions.Spawn)
            handle = self.workers[action.pid]
            if isinstance(action, decisions.Abort):
                self.log.critical("WORKER TIMEOUT (pid:%d) timeout=%s", action.pid, self.settings.timeout)
                handle.kill_deadline = now + ABORT_GRACE
                self.kill(action.pid, signal.SIGABRT)
            elif isinstance(action, decisions.Kill):
                self.log.error("worker killed pid=%d reason=did-not-exit-in-time", action.pid)
                # Repeat once a second until waitpid reports it, rather than trusting one signal.
                handle.kill_deadline = now + 1.0
                self.kill(action.pid, signal.SIGKILL)
        if self.stop_deadline is not None and now >= self.stop_deadline and self.workers:
            self.log.warning("graceful timeout reached; killing workers count=%d", len(self.workers))
            self._signal_workers(signal.SIGKILL)
            self.stop_deadline = now + 1.0

    # ---- stop -----------------------------------------------------------------------------

    def stop(self, graceful: bool, exit_code: int = 0) -> None:
        """Close listeners, ask workers to stop (TERM: finish requests; QUIT: now), then wait."""
        self.exit_code = exit_code
        unlink = self.may_unlink_sockets()
        for listener in self.listeners:
            listener.close(unlink=unlink)
        self.listeners = []
        self.lifecycle.stopping(self)
        if self.control is not None:
            self.control.close(unlink=self.may_unlink_sockets())
        self._signal_workers(signal.SIGTERM if graceful else signal.SIGQUIT)
        self.stop_deadline = time.monotonic() + self.settings.graceful_timeout

    def may_unlink_sockets(self) -> bool:
        """A unix socket file stays when another master (old or new) still serves on it."""
        return self.new_master_pid == 0 and self.old_master_pid == 0

    def _finish(self) -> None:
        self.log.info("Shutting down: Master")
        if self._pidfile_path:
            remove_pidfile(self._pidfile_path, self.own_pid)
        call_hook(self.settings, "on_exit", self)
        if self.control is not None:
            self.control.close(unlink=self.may_unlink_sockets())
        self.upgrader.close()
        if self._signals is not None:
            self._signals.restore()
        self.selector.close()
        self.lifecycle.finished(self)

    # ---- reporting ----------------------------------------------------------------------

    @property
    def board_capacity(self) -> int:
        return self._board.capacity

    @property
    def is_reloading(self) -> bool:
        return self.reloader.is_reloading

    def booted_workers(self) -> int:
        return sum(
            1
            for w in self.workers.values()
            if w.is_booted and not w.is_retiring and w.generation == self.generation
        )

    def requests_served(self) -> int:
        """Requests served by the workers alive now (each counts its own)."""
        return sum(self._board.requests_served(w.slot) for w in self.workers.values())

    def status(self) -> dict[str, object]:
        return {
            "pid": self.own_pid,
            "workers": f"{self.booted_workers()}/{self.num_workers} booted",
            "worker_pids": " ".join(str(p) for p in sorted(self.workers)),
            "generation": self.generation,
            "reloading": self.is_reloading,
            "requests_served": self.requests_served(),
            "listeners": " ".join(str(lst) for lst in self.listeners),
            "upgrade_child": self.new_master_pid or "-",
        }

    # ---- small effects ------------------------------------------------------------------

    def update_pidfile(self, is_starting: bool = False) -> None:
        """Write PIDFILE (PIDFILE.2 while an old master still runs); drop a path no longer set.

        At start a pidfile that cannot be written stops the server; later (HUP, promotion) it
        is logged and the server serves on: the reload itself did not fail.
        """
        path = self.settings.pidfile
        if path and self.old_master_pid:
            path = f"{path}.2"
        if self._pidfile_path and self._pidfile_path != path:
            remove_pidfile(self._pidfile_path, self.own_pid)
        self._pidfile_path = path or None
        if not self._pidfile_path:
            return
        try:
            write_pidfile(self._pidfile_path, self.own_pid)
        except OSError as exc:
            if is_starting:
                raise
            self.log.error("cannot write the pidfile path=%s reason=%s", self._pidfile_path, exc)

    def set_title(self) -> None:
        set_title(f"master [{self.proc_name}]")

    @property
    def proc_name(self) -> str:
        return str(self.settings.proc_name or self.settings.app_uri or "unitcorn")


def gunicorn_address(bind: Any) -> Any:
    """One Bind as gunicorn's util.parse_address gives it: (host, port), a path, or an fd."""
    if bind.kind == "unix":
        return bind.path
    if bind.kind == "fd":
        return bind.fd
    return (bind.host, bind.port)
