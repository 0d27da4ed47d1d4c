"""The master process: one loop that waits for signals, worker messages and deadlines, then acts.

What the master knows is `state.py` (a MasterState); its rules are `decisions.py` (pure:
`step(state, event) -> actions` for commands, worker exits, readiness and the stop; the worker
plan, heartbeats, the reload phases, the upgrade handshake); this module carries their results
out (fork, kill, waitpid, pidfile, listeners, plug-in events), and is the only one in arbiter/
that changes the state. The loop wakes on a signal byte, a worker's "booted" message, the old
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
from unitcorn.app import load_configured_app
from unitcorn.arbiter import decisions
from unitcorn.arbiter.code_watcher import CodeWatcher
from unitcorn.arbiter.control import ControlServer
from unitcorn.arbiter.decisions import Command
from unitcorn.arbiter.descriptors import close_all_but, worker_descriptors
from unitcorn.arbiter.lifecycle import Lifecycle, Lifecycles, MasterStatus
from unitcorn.arbiter.reexec import exec_new_master
from unitcorn.arbiter.reload import (
    NextGeneration,
    ReloadFailed,
    binds_for,
    check_worker_bounds,
    prepare_generation,
)
from unitcorn.arbiter.state import (
    Fallback,
    MasterState,
    PendingUpgrade,
    Reload,
    Succession,
    WorkerHandle,
)
from unitcorn.arbiter.statsd_plugin import WorkerCountGauge
from unitcorn.arbiter.upgrade import receive, send, start_new_master, watch_old_master
from unitcorn.hooks import call_hook
from unitcorn.logs import ERROR_LOGGER, configure_logging, reopen_logs, set_log_context
from unitcorn.pidfile import remove_pidfile, write_pidfile
from unitcorn.process.environment import apply_environment
from unitcorn.process.heartbeat import BoardFull, HeartbeatBoard
from unitcorn.process.signals import SignalQueue, fork_with_signals_blocked
from unitcorn.proctitle import set_title
from unitcorn.settings.errors import ConfigError
from unitcorn.settings.values import Settings
from unitcorn.sockets import Listener, explicit_umask, open_listeners
from unitcorn.workers import worker_class_for

# How long a worker gets between SIGABRT (worker_abort hook) and SIGKILL.
ABORT_GRACE = 2.0
# After fork (or a pipe for it) failed for want of memory or descriptors, try again this much later.
SPAWN_RETRY = 1.0


class Master:
    """gunicorn's Arbiter, reorganised: state in MasterState, rules in decisions, effects here."""

    def __init__(
        self,
        settings: Settings,
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
        # A new master of an upgrade becomes the main process only once the old one hands over.
        is_successor = bool(old_master_pid) or upgrade_link is not None
        self.state = MasterState(
            own_pid=os.getpid(),
            desired_workers=settings.workers,
            old_master_pid=old_master_pid,
            succession=Succession.AWAITING_MAIN if is_successor else Succession.MAIN,
        )
        path = None if settings.control_socket_disable else settings.control_socket
        self.control = ControlServer(path, settings.control_socket_mode) if path else None
        # Plug-ins: systemd (given), the control socket, the statsd workers gauge, --reload.
        self.code_watcher = CodeWatcher(settings, self) if settings.reload else None
        plugins = (lifecycle, self.control, WorkerCountGauge(), self.code_watcher)
        self.lifecycle = Lifecycles(*(m for m in plugins if m is not None))
        self.log = logging.getLogger(ERROR_LOGGER)
        self.app: Any = None
        self._worker_age = 0
        self._pidfile_path: str | None = None
        # Twice the bound: during a reload both generations are alive (see check_worker_bounds).
        self._board = HeartbeatBoard(2 * settings.max_workers)
        # Back-off after workers that died before booting (see decisions.spawn_delay).
        self._boot_failures = decisions.BootFailures(generation=self.state.generation)
        self._spawn_deadline: float | None = None
        self._spawn_delay_logged: float | None = None
        self.selector = selectors.DefaultSelector()
        self._signals: SignalQueue | None = None
        self._ready_reader, self._ready_writer = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._life_reader, self._life_writer = os.pipe2(os.O_CLOEXEC)
        # After an upgrade: our line to the old master ("ready" out, "main" back).
        self._upgrade_link = upgrade_link
        # After an upgrade: a pidfd that becomes readable when the old master exits.
        self._old_master_fd = -1

    # gunicorn's names, for hooks written against the Arbiter.
    @property
    def cfg(self) -> Any:
        return self.settings

    @property
    def WORKERS(self) -> dict[int, Any]:
        return {pid: handle.process for pid, handle in self.state.workers.items()}

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
        return self.state.own_pid

    @property
    def master_pid(self) -> int:
        """The old master's pid while this master is the new one of an upgrade, else 0."""
        return self.state.old_master_pid

    @property
    def reexec_pid(self) -> int:
        """The new master's pid while an upgrade started here runs, else 0."""
        return self.state.new_master_pid

    @property
    def master_name(self) -> str:
        return "Master.2" if self.state.old_master_pid else "Master"

    # What the plug-ins and hooks read (gunicorn's Arbiter has the same names).
    @property
    def workers(self) -> dict[int, WorkerHandle]:
        return self.state.workers

    @property
    def num_workers(self) -> int:
        return self.state.desired_workers

    @property
    def generation(self) -> int:
        return self.state.generation

    @property
    def is_ready(self) -> bool:
        return self.state.is_ready

    @property
    def stop_deadline(self) -> float | None:
        return self.state.stop_deadline

    @property
    def exit_code(self) -> int:
        return self.state.exit_code

    # ---- start and the loop -------------------------------------------------------------

    def run(self) -> int:
        """Serve until told to stop; return the process exit status."""
        self._signals = SignalQueue(decisions.HANDLED_SIGNALS)
        self.selector.register(self._signals, selectors.EVENT_READ, self._handle_signals)
        self.selector.register(self._ready_reader, selectors.EVENT_READ, self._read_boot_messages)
        self._watch_old_master()
        set_log_context(UNITCORN_GENERATION=self.state.generation)  # journald field of our entries
        self.log.info("Starting unitcorn %s", __version__)
        # gunicorn's Arbiter calls this as it first sets its worker count, before on_starting.
        call_hook(self.settings, "nworkers_changed", self, self.state.desired_workers, None)
        call_hook(self.settings, "on_starting", self)
        self.listeners = open_listeners(
            binds_for(self.settings, self.inherited),
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
            self.app = load_configured_app(self.settings)
        self.update_pidfile(is_starting=True)
        self.set_title()
        # Opened once nothing above can fail: a server that never started leaves no socket.
        # A new master of an upgrade opens it when it becomes the main process.
        if self.state.succession is Succession.MAIN and self.control is not None:
            self.control.open(self.selector, self)
        if self.code_watcher is not None:
            self.code_watcher.open(self.selector)
        try:
            self._guarded(self._manage_workers)
            while not self._is_finished():
                self._step()
        finally:
            self._finish()
        return self.state.exit_code

    def _step(self) -> None:
        """One turn: select; each ready source (signal pipe, boot pipe, upgrade channel, ctl)
        turns what it read into events, `decisions.step` (or `upgrade_step`) turns them into
        actions, `_carry_out` does them; then children are reaped (WorkerExited), deadlines
        checked (Tick, heartbeats), the worker plan applied and the plug-ins ticked."""
        for key, _ in self.selector.select(self._select_timeout()):
            self._guarded(key.data)
        self._guarded(self._reap_children)
        now = time.monotonic()
        self._guarded(lambda: self._enforce_deadlines(now))
        self._guarded(lambda: self._check_upgrade_deadline(now))
        if self.state.stop_deadline is None:
            self._guarded(self._manage_workers)
        self._guarded(lambda: self.lifecycle.tick(self.status_snapshot(), now))

    def _guarded(self, action: Any) -> None:
        """Run one event's handling; a bug in it is logged, and the master goes on serving.

        The master exits only on purpose (`stop`, which ends the loop). Only Exception is caught:
        SystemExit and KeyboardInterrupt still end the process as they mean to.
        """
        try:
            action()
        except Exception:
            if os.getpid() != self.state.own_pid:
                # A forked child whose entry function leaked an exception must never run the
                # master's loop (its own paths end in os._exit; this is the backstop).
                os._exit(1)
            self.log.exception("master: unexpected error handling an event; carrying on")

    def _select_timeout(self) -> float | None:
        deadlines = [
            decisions.next_heartbeat_deadline(
                self.state.workers.values(), self.settings.timeout, self._board.last_beat
            ),
            self.state.stop_deadline,
            self.lifecycle.next_deadline(),
            self._upgrade_deadline(),
            self._spawn_deadline if self.state.stop_deadline is None else None,
        ]
        nearest = min((d for d in deadlines if d is not None), default=None)
        if nearest is None:
            return None
        return max(0.0, nearest - time.monotonic())

    def _is_finished(self) -> bool:
        return self.state.stop_deadline is not None and not self.state.workers

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
        self._carry_out(decisions.step(self.state, decisions.CommandGiven(command, signum)))

    def _carry_out(self, actions: list[decisions.Action]) -> None:
        """Do what `decisions.step` decided, in order: the one place its actions become effects."""
        for action in actions:
            if isinstance(action, decisions.StartReload):
                self.reload()
            elif isinstance(action, decisions.RevertReload):
                self._revert_reload(action.reason)
            elif isinstance(action, decisions.Stop):
                self.stop(graceful=action.graceful)
            elif isinstance(action, decisions.Halt):
                self.log.error("halting: a worker could not start reason=%s", action.reason)
                self.stop(graceful=False, exit_code=action.exit_code)
            elif isinstance(action, decisions.ScaleTo):
                refusal = self.set_worker_count(action.count)
                if refusal:
                    self.log.warning("%s ignored: %s", signal.Signals(action.signum).name, refusal)
            elif isinstance(action, decisions.StopAllWorkers):
                self.log.info("stopping all workers (WINCH) master stays")
                self.set_worker_count(0)
            elif isinstance(action, decisions.ReopenLogs):
                reopen_logs()
            elif isinstance(action, decisions.SignalWorkers):
                self._signal_workers(action.signum)
            elif isinstance(action, decisions.StartUpgrade):
                self.start_upgrade()
            elif isinstance(action, decisions.AnnounceReady):
                self._announce_ready()
            elif isinstance(action, decisions.KillRemaining):
                count = len(self.state.workers)
                self.log.warning("graceful timeout reached; killing workers count=%d", count)
                self._signal_workers(signal.SIGKILL)
                self.state.stop_deadline = action.again_at
            elif isinstance(action, decisions.Ignored):
                self.log.debug("%s", action.reason)
            else:
                self._carry_out_upgrade(action)

    def set_worker_count(self, count: int) -> str | None:
        """Run `count` workers from now on; returns why not (out of bounds), or None."""
        refusal = decisions.worker_count_refusal(count, self.settings.max_workers)
        if refusal:
            return refusal
        old = self.state.desired_workers
        if count == old:
            self.log.info("worker count unchanged workers=%d", old)
            return None
        self.state.desired_workers = count
        self.log.info("worker count changed workers=%d previous=%d", count, old)
        call_hook(self.settings, "nworkers_changed", self, count, old)
        self.lifecycle.status_changed(self.status_snapshot())
        return None

    # ---- workers --------------------------------------------------------------------------

    def _manage_workers(self) -> None:
        now = time.monotonic()
        state = self.state
        actions = decisions.plan_workers(state.workers.values(), state.desired_workers, state.generation)
        may_spawn = self._may_spawn(now, any(isinstance(a, decisions.Spawn) for a in actions))
        for action in actions:
            if isinstance(action, decisions.Spawn):
                if not may_spawn:
                    continue
                if not self._try_spawn_worker(action.generation, now):
                    may_spawn = False  # the rest would fail the same way
            elif isinstance(action, decisions.Retire):
                self.retire_worker(action.pid, now)
        self._check_reload_done()

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
            if self.state.reload.is_reloading and generation == self.state.generation:
                self._revert_reload(f"cannot start a worker: {exc}")
            else:
                # The same wait as a back-off step, already explained by the line above.
                self._spawn_deadline = self._spawn_delay_logged = now + SPAWN_RETRY
            return False
        return True

    def _may_spawn(self, now: float, is_wanted: bool) -> bool:
        """Whether the back-off after boot failures lets workers be spawned now; the loop's
        select timeout includes the deadline, so the spawn happens when it passes."""
        failures = decisions.for_generation(self._boot_failures, self.state.generation)
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
            self.state.workers.values(),
            self.state.generation,
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
            ppid=self.state.own_pid,
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
            self.state.workers[pid] = WorkerHandle(
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
        for fd in (self._ready_reader, self._life_writer, self._old_master_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def retire_worker(self, pid: int, now: float) -> None:
        handle = self.state.workers.get(pid)
        if handle is None or handle.is_retiring:
            return
        handle.retire_deadline = now + self.settings.graceful_timeout
        self.kill(pid, signal.SIGTERM)

    def _signal_workers(self, signum: int) -> None:
        for pid in list(self.state.workers):
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
            handle = self.state.workers.get(int(line))
            if handle is None or handle.is_booted:
                continue
            handle.is_booted = True
            self.log.info(
                "Booting worker with pid: %d generation=%d", handle.pid, handle.generation
            )
        self._carry_out(decisions.step(self.state, decisions.WorkersBooted()))
        self.lifecycle.status_changed(self.status_snapshot())

    def _announce_ready(self) -> None:
        self.state.is_ready = True
        self.log.info("server ready workers=%d", self.state.desired_workers)
        call_hook(self.settings, "when_ready", self)
        self.lifecycle.ready(self.status_snapshot())
        if self._upgrade_link is not None:
            self._tell_old_master(b"ready\n")

    def _reap_children(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.state.new_master_pid:
                self.state.new_master_pid = 0
                info = decisions.classify_exit(status)
                self.log.info("upgraded master exited pid=%d reason=%s", pid, info.reason)
                self._upgrade_event(decisions.NewMasterExited(info.reason))
                continue
            handle = self.state.workers.pop(pid, None)
            if handle is None:
                continue
            self._count_boot_failure(handle)
            self._board.release(handle.slot)
            self._on_worker_exit(handle, decisions.classify_exit(status))

    def _on_worker_exit(self, handle: WorkerHandle, info: decisions.ExitInfo) -> None:
        expected = handle.is_retiring or self.state.stop_deadline is not None
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
        self._carry_out(decisions.step(self.state, decisions.WorkerExited(handle, info)))

    def _enforce_deadlines(self, now: float) -> None:
        actions = decisions.heartbeat_actions(
            self.state.workers.values(), now, self.settings.timeout, self._board.last_beat
        )
        for action in actions:
            assert not isinstance(action, decisions.Spawn)
            handle = self.state.workers[action.pid]
            if isinstance(action, decisions.Abort):
                self.log.critical("WORKER TIMEOUT (pid:%d) timeout=%s", action.pid, self.settings.timeout)
                handle.kill_deadline = now + ABORT_GRACE
                self.kill(action.pid, signal.SIGABRT)
            elif isinstance(action, decisions.Kill):
                self.log.error("worker killed pid=%d reason=did-not-exit-in-time", action.pid)
                # Repeat once a second until waitpid reports it, rather than trusting one signal.
                handle.kill_deadline = now + 1.0
                self.kill(action.pid, signal.SIGKILL)
        self._carry_out(decisions.step(self.state, decisions.Tick(now)))

    # ---- reload (HUP): rules in decisions, loading in reload.py -------------------------

    def reload(self) -> None:
        """Reload configuration from scratch and replace every worker, old ones serving meanwhile."""
        phase, is_starting = decisions.reload_requested(self.state.reload.phase)
        self.state.reload.phase = phase
        if not is_starting:
            return  # let the running reload finish first; then apply the newest configuration
        self.lifecycle.reload_started(self.status_snapshot())
        try:
            next_generation = prepare_generation(
                self.argv, self.environ_orig, self.start_cwd, self._board.capacity,
                self.settings, self.listeners,
            )
        except ReloadFailed as exc:
            self._reload_failed(str(exc))
            return
        try:
            # First of the changes, as it is the one that can still fail: a logging config that
            # reads well but does not apply (an unknown handler class, a --logger-class that
            # raises).
            configure_logging(next_generation.settings)
        except ConfigError as exc:
            self._abandon_generation(next_generation)
            self._reload_failed(f"logging: {exc}")
            return
        for listener in self.listeners:
            if listener not in next_generation.listeners:
                self.log.info("closing listener no longer bound address=%s", listener)
                listener.close(unlink=self.may_unlink_sockets())
        state = self.state
        state.reload.fallback = Fallback(self.settings, state.generation, state.desired_workers, self.app)
        old_count = state.desired_workers
        settings = next_generation.settings
        self.listeners = next_generation.listeners
        self.settings = settings
        self.app = next_generation.app
        for warning in settings.warnings:  # as at start: the reloaded config may add some
            self.log.warning("configuration warning: %s", warning)
        state.desired_workers = settings.workers
        if state.desired_workers != old_count:
            call_hook(settings, "nworkers_changed", self, state.desired_workers, old_count)
        call_hook(settings, "on_reload", self)
        self.update_pidfile()
        self.set_title()
        state.reload.newest_generation += 1
        state.generation = state.reload.newest_generation
        set_log_context(UNITCORN_GENERATION=state.generation)
        self.log.info("reload started generation=%d workers=%d", state.generation, state.desired_workers)

    def _abandon_generation(self, next_generation: NextGeneration) -> None:
        """A prepared generation that will not run: its new sockets closed, and the logging and
        environment of the settings that serve on put back."""
        for listener in next_generation.listeners:
            if listener not in self.listeners:
                listener.close(unlink=self.may_unlink_sockets())
        apply_environment(self.environ_orig, self.settings)
        try:
            configure_logging(self.settings)
        except ConfigError as exc:  # its file changed on disk meanwhile: built-in logging is in place
            self.log.error("logging: the serving configuration's logging no longer applies: %s", exc)

    def _check_reload_done(self) -> None:
        if not decisions.is_reload_complete(self.state):
            return
        is_asked_again = self._end_reload()
        self.log.info("reload complete generation=%d", self.state.generation)
        self.lifecycle.reload_finished(self.status_snapshot(), ok=True, reason="")
        if is_asked_again:
            self.reload()

    def _reload_failed(self, reason: str) -> None:
        is_asked_again = self._end_reload()
        self.log.error("reload failed, old generation keeps serving reason=%s", reason)
        self.lifecycle.reload_finished(self.status_snapshot(), ok=False, reason=reason)
        if is_asked_again:
            self.reload()

    def _end_reload(self) -> bool:
        """Back to IDLE; returns whether another reload was asked for meanwhile."""
        is_asked_again = decisions.reload_ended(self.state.reload.phase)
        self.state.reload = Reload(newest_generation=self.state.reload.newest_generation)
        return is_asked_again

    def _revert_reload(self, reason: str) -> None:
        """The new generation cannot boot: retire it, and serve on with the old settings."""
        fallback = self.state.reload.fallback
        assert fallback is not None
        failed_generation = self.state.generation
        self.state.reload.fallback = None
        for handle in list(self.state.workers.values()):
            if handle.generation == failed_generation:
                self.retire_worker(handle.pid, time.monotonic())
        self.settings, self.state.generation = fallback.settings, fallback.generation
        self.state.desired_workers, self.app = fallback.desired_workers, fallback.app
        set_log_context(UNITCORN_GENERATION=self.state.generation)
        configure_logging(self.settings)
        apply_environment(self.environ_orig, self.settings)
        self.update_pidfile()
        self._reload_failed(reason)

    # ---- upgrade (USR2), the old master's side: rules in decisions.upgrade_step -----------

    def start_upgrade(self, complete_automatically: bool | None = None) -> str | None:
        """Start a new master from the installed code, handing it our listening sockets.

        With `complete_automatically` (ctl upgrade, or any USR2 under systemd) this master hands
        over and retires once the new one reports ready; otherwise both run, as in gunicorn,
        until the operator retires the old one. Returns why the upgrade was refused, or None.
        """
        refusal = decisions.reexec_refusal(self.state.new_master_pid, self.state.old_master_pid)
        if refusal:
            self.log.warning("USR2 ignored: %s", refusal)
            return refusal
        # Under systemd the new master is detached (see upgrade.start_new_master).
        is_detached = self.lifecycle.completes_upgrades()
        if complete_automatically is None:
            complete_automatically = is_detached
        try:
            pid, channel = start_new_master(is_detached, self.become_child, self._exec_new_master)
        except OSError as exc:
            # Out of descriptors, memory or processes (EMFILE, ENOMEM, EAGAIN …): this upgrade
            # fails, reported to whoever asked (USR2: the log; ctl: its answer); we serve on.
            self.log.error("upgrade failed to start reason=%s", exc)
            return f"the new master could not be started: {exc}"
        self.state.new_master_pid = pid
        deadline = time.monotonic() + self.settings.upgrade_timeout
        self.state.upgrade = PendingUpgrade(pid, channel, deadline, complete_automatically, is_detached)
        self.selector.register(channel, selectors.EVENT_READ, self._read_upgrade_channel)
        self.log.info("upgrade started new_master=%d", pid)
        self.lifecycle.upgrade_started(self.status_snapshot(), pid)
        return None

    def _exec_new_master(self, channel: socket.socket) -> None:
        """In the forked child: exec the new master (never returns)."""
        environment = self.lifecycle.new_master_environment(os.getpid())
        exec_new_master(self, channel, environment)

    def _upgrade_deadline(self) -> float | None:
        """When a new master that has not reported ready is given up on."""
        upgrade = self.state.upgrade
        return upgrade.deadline if upgrade is not None and upgrade.deadline_applies else None

    def _check_upgrade_deadline(self, now: float) -> None:
        deadline = self._upgrade_deadline()
        if deadline is not None and now >= deadline:
            self._upgrade_event(decisions.UpgradeTimedOut(self.settings.upgrade_timeout))

    def _read_upgrade_channel(self) -> None:
        """The new master reports "ready" once its workers serve, then "taken" (EOF: it exited)."""
        upgrade = self.state.upgrade
        assert upgrade is not None
        data = receive(upgrade.channel)
        if data is None:
            return
        self._upgrade_event(decisions.ChannelData(data))
        if not data and upgrade.is_detached:
            self.log.info("upgraded master exited pid=%d", upgrade.new_master_pid)

    def _upgrade_event(self, event: decisions.UpgradeEvent) -> None:
        self._carry_out(decisions.step(self.state, event))

    def _carry_out_upgrade(self, action: decisions.UpgradeAction | decisions.UpgradeAdvanced) -> None:
        upgrade = self.state.upgrade
        assert upgrade is not None  # CloseUpgrade comes last
        if isinstance(action, decisions.UpgradeAdvanced):
            upgrade.phase = action.phase
        elif isinstance(action, decisions.AnnounceNewMaster):
            self.log.info("upgrade: new master ready pid=%d", action.pid)
            self.lifecycle.upgrade_ready(self.status_snapshot(), action.pid)
            send(upgrade.channel, b"main\n")
        elif isinstance(action, decisions.UpgradeFinished):
            if not action.ok:
                self.log.error("upgrade failed, this master keeps serving reason=%s", action.reason)
            self.lifecycle.upgrade_finished(self.status_snapshot(), action.ok, action.reason)
        elif isinstance(action, decisions.RetireForNewMaster):
            self.log.info("upgrade complete; this master retires new_master=%d", action.pid)
            self.stop(graceful=True)
        elif isinstance(action, decisions.QuitNewMaster):
            self.kill(action.pid, signal.SIGQUIT)
        elif isinstance(action, decisions.CloseUpgrade):
            self._close_upgrade()

    def _close_upgrade(self) -> None:
        upgrade = self.state.upgrade
        if upgrade is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(upgrade.channel)
        upgrade.channel.close()
        if upgrade.is_detached and self.state.new_master_pid == upgrade.new_master_pid:
            self.state.new_master_pid = 0  # no waitpid will tell us: USR2 may be used again
        self.state.upgrade = None

    # ---- upgrade, the new master's side ---------------------------------------------------

    def _watch_old_master(self) -> None:
        """After an upgrade, listen to the old master, and learn at once when it exits (a pidfd)."""
        if self._upgrade_link is not None:
            self.selector.register(self._upgrade_link, selectors.EVENT_READ, self._read_upgrade_link)
        if not self.state.old_master_pid:
            return
        fd = watch_old_master(self.state.old_master_pid)
        if fd is None:
            self._promote()
            return
        self._old_master_fd = fd
        self.selector.register(fd, selectors.EVENT_READ, self._promote)

    def _tell_old_master(self, message: bytes) -> None:
        assert self._upgrade_link is not None
        failure = send(self._upgrade_link, message)
        if failure is not None:
            self.log.warning("cannot reach the old master: %s", failure)

    def _read_upgrade_link(self) -> None:
        """The old master answers "main" once systemd knows us as the main process."""
        assert self._upgrade_link is not None
        data = receive(self._upgrade_link)
        if data is None:
            return
        if b"main" in data:
            self._become_main()
            self._tell_old_master(b"taken\n")
        if not data:
            self.selector.unregister(self._upgrade_link)
            self._upgrade_link.close()
            self._upgrade_link = None

    def _become_main(self) -> None:
        if self.state.succession is Succession.MAIN:
            return
        self.state.succession = Succession.MAIN
        self.log.info("now the main process of the service")
        if self.control is not None:
            self.control.open(self.selector, self)
        self.lifecycle.became_main(self.status_snapshot())

    def _promote(self) -> None:
        """The old master exited: we are the only master now."""
        if self._old_master_fd >= 0:
            self.selector.unregister(self._old_master_fd)
            os.close(self._old_master_fd)
            self._old_master_fd = -1
        old_master_pid = self.state.old_master_pid
        self.log.info("master promoted: the old master exited old_master=%d", old_master_pid)
        self.state.old_master_pid = 0
        self.update_pidfile()
        self.set_title()
        self._become_main()

    # ---- stop -----------------------------------------------------------------------------

    def stop(self, graceful: bool, exit_code: int = 0) -> None:
        """Close listeners, ask workers to stop (TERM: finish requests; QUIT: now), then wait."""
        self.state.exit_code = exit_code
        unlink = self.may_unlink_sockets()
        for listener in self.listeners:
            listener.close(unlink=unlink)
        self.listeners = []
        self.lifecycle.stopping(self.status_snapshot())
        if self.control is not None:
            self.control.close(unlink=self.may_unlink_sockets())
        self._signal_workers(signal.SIGTERM if graceful else signal.SIGQUIT)
        self.state.stop_deadline = time.monotonic() + self.settings.graceful_timeout

    def may_unlink_sockets(self) -> bool:
        """A unix socket file stays when another master (old or new) still serves on it."""
        return self.state.new_master_pid == 0 and self.state.old_master_pid == 0

    def _finish(self) -> None:
        self.log.info("Shutting down: Master")
        if self._pidfile_path:
            remove_pidfile(self._pidfile_path, self.state.own_pid)
        call_hook(self.settings, "on_exit", self)
        if self.control is not None:
            self.control.close(unlink=self.may_unlink_sockets())
        self._close_upgrade()
        if self._signals is not None:
            self._signals.restore()
        self.selector.close()
        self.lifecycle.finished(self.status_snapshot())

    # ---- reporting ----------------------------------------------------------------------

    @property
    def board_capacity(self) -> int:
        return self._board.capacity

    @property
    def is_reloading(self) -> bool:
        return self.state.reload.is_reloading

    def booted_workers(self) -> int:
        return self.state.booted_workers()

    def requests_served(self) -> int:
        """Requests served by the workers alive now (each counts its own)."""
        return sum(self._board.requests_served(w.slot) for w in self.state.workers.values())

    def status_snapshot(self) -> MasterStatus:
        """What the plug-ins may know, as it is now (they read this, never the master)."""
        state = self.state
        return MasterStatus(
            own_pid=state.own_pid,
            generation=state.generation,
            desired_workers=state.desired_workers,
            booted_workers=state.booted_workers(),
            worker_pids=tuple(state.workers),
            requests_served=self.requests_served(),
            is_ready=state.is_ready,
            is_stopping=state.is_stopping,
            is_reloading=state.reload.is_reloading,
            new_master_pid=state.new_master_pid,
            exit_code=state.exit_code,
            listeners=tuple(self.listeners),
            settings=self.settings,
        )

    # ---- small effects ------------------------------------------------------------------

    def update_pidfile(self, is_starting: bool = False) -> None:
        """Write PIDFILE (PIDFILE.2 while an old master still runs); drop a path no longer set.

        At start a pidfile that cannot be written stops the server; later (HUP, promotion) it
        is logged and the server serves on: the reload itself did not fail.
        """
        path = self.settings.pidfile
        if path and self.state.old_master_pid:
            path = f"{path}.2"
        if self._pidfile_path and self._pidfile_path != path:
            remove_pidfile(self._pidfile_path, self.state.own_pid)
        self._pidfile_path = path or None
        if not self._pidfile_path:
            return
        try:
            write_pidfile(self._pidfile_path, self.state.own_pid)
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
