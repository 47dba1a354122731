"""Executors: in-process, local worker processes (one fresh process per job), and submitit (Slurm).

Local worker processes are forked from a fork server that has imported torch, the plugins and the heavy
libraries once (``dig.runner.preload``), so a job's process starts in milliseconds instead of seconds; each job
still gets its own process, and the parent's current environment. ``DIG_WORKER_START=spawn`` starts each one
from scratch instead.

Every executor asks ``claim(job)`` right before a job starts (the runner takes the job's lock there and skips
jobs another process holds or has finished meanwhile) and calls ``release(job)`` once its record is written.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from dig.errors import DigError
from dig.plugins import PluginSettings
from dig.registry import Registry
from dig.runner.execute import execute_in_worker, execute_job
from dig.runner.records import RECORD_SCHEMA_VERSION, write_record
from dig.runner.spec import Job, WorkerLayout
from dig.tracks.base import EpochCallback

JobDone = Callable[[Job, dict[str, Any]], None]
JobStart = Callable[[Job], EpochCallback | None]
Claim = Callable[[Job], bool]
Release = Callable[[Job], None]

EXECUTORS = ("local", "submitit")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PRELOAD = "dig.runner.preload"
# Read by a module when it is imported, so a fork server started under other values would serve jobs the wrong
# import: with these changed since it started, jobs are spawned.
IMPORT_TIME_VARIABLES = ("TRITON_INTERPRET",)
_fork_server_environment: dict[str, str | None] | None = None


def worker_context() -> multiprocessing.context.BaseContext:
    """The fork server (preloaded with ``PRELOAD``) where Linux has one, else ``spawn``; ``spawn`` also when
    ``DIG_WORKER_START=spawn`` or when an import-time variable changed since the fork server started."""
    global _fork_server_environment
    method = os.environ.get("DIG_WORKER_START", "forkserver")
    if method not in ("forkserver", "spawn"):
        raise DigError(f"DIG_WORKER_START={method!r}: use 'forkserver' (the default) or 'spawn'")
    if method == "spawn" or not sys.platform.startswith("linux") or \
            "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    now = {name: os.environ.get(name) for name in IMPORT_TIME_VARIABLES}
    if _fork_server_environment is None:
        _fork_server_environment = now
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([PRELOAD])
        return context
    return multiprocessing.get_context("forkserver" if now == _fork_server_environment else "spawn")


def crash_record(job: Job, out_dir: str, reason: str, layout: WorkerLayout) -> dict[str, Any]:
    record = {
        "schema_version": RECORD_SCHEMA_VERSION, **asdict(job), "status": "failed", "reason": reason, "metrics": [],
        "threads": layout.threads, "workers": layout.workers, "executor": layout.executor,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_record(out_dir, record)
    return record


def run_in_process(
    jobs: Sequence[Job], out_dir: str, registry: Registry, layout: WorkerLayout,
    claim: Claim, release: Release, on_start: JobStart, on_done: JobDone,
) -> None:
    for job in jobs:
        if not claim(job):
            continue
        try:
            record = execute_job(job, out_dir, registry=registry, on_epoch=on_start(job), layout=layout)
        finally:
            release(job)
        on_done(job, record)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent(bench: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (even by SIGKILL, which the parent cannot catch),
    so no worker trains on as an orphan after the bench is gone; its lock then names a dead process. The
    parent is the bench process (spawn) or the fork server, which exits as soon as the bench process is gone."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            return
    # The parent or the bench died before the request took effect (an orphan is re-parented, not always to 1).
    if not _alive(bench) or os.getppid() != parent or parent == 1:
        os._exit(1)


def _let_go_of_fork_server() -> None:
    """A process forked by the fork server inherits the server's "alive" pipe, and the server runs on while any
    holder lives: a job would keep its own parent, and so its parent-death signal, alive after the bench is gone.
    A job starts no processes through this server, so it closes its end (a later forkserver use starts anew)."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        os.close(fd)
        server._forkserver_alive_fd = None
        server._forkserver_address = None
        server._forkserver_pid = None


def _worker_main(job: Job, out_dir: str, settings: PluginSettings, layout: WorkerLayout, conn: Connection,
                 parent: int, environment: dict[str, str]) -> None:
    """Body of a worker process: run one job in the bench's current ``environment``, stream its epochs to the
    parent, send its record last."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bench's to handle (see _interrupts_deferred)
    _let_go_of_fork_server()
    _die_with_parent(parent)
    os.environ.clear()
    os.environ.update(environment)

    def tell_bench(message: tuple) -> None:
        try:
            conn.send(message)
        except (BrokenPipeError, ConnectionResetError):  # the bench is gone, and nobody is left to tell
            os._exit(1)

    def on_epoch(epoch: int, total: int, info: Any) -> None:
        tell_bench(("epoch", epoch, total, dict(info)))

    record = execute_job(job, out_dir, settings=settings, on_epoch=on_epoch, layout=layout)
    tell_bench(("record", record))
    conn.close()
    # The record is on disk and with the parent, which waits for this process to end before starting the next
    # job: skip the interpreter's teardown of torch and the plugins (0.3-0.4 s per job, measured).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a worker starts, then deliver them once it is registered.

    Blocking SIGINT alone is not enough: it blocks the calling thread only, and a Ctrl-C to the process group
    reaches the bench through any other thread (torch's, for one), after which Python raises KeyboardInterrupt in
    the main thread wherever it is, inside ``Process.start`` too, between the fork and the read of the child's
    pid. That child would be unknown to the cleanup and run on as an orphan. So the Python-level handlers are
    swapped for ones that only note the signal, and the noted signal goes to the previous handler on exit.
    SIGINT is also blocked, so processes started inside (the fork server, hence every job it forks) inherit it
    blocked: a Ctrl-C to the process group reaches only the bench, which stops them itself."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[tuple[int, Any]] = []

    def note(signum: int, frame: Any) -> None:
        noted.append((signum, frame))

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler not in (signal.SIG_IGN, None):
            previous[signum] = signal.signal(signum, note)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if noted:
            signum, frame = noted[0]
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            else:
                signal.raise_signal(signum)


def _start_registered(process: multiprocessing.process.BaseProcess, register: Callable[[], None],
                      abandon: Callable[[], None]) -> None:
    """Start ``process`` with interrupts deferred; ``register`` once it has a pid (also when start() then
    fails), else ``abandon``: no started process is ever unknown to the caller's cleanup."""
    with _interrupts_deferred():
        try:
            process.start()
        finally:
            if process.pid is not None:
                register()
            else:
                abandon()


def death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the OS kills processes that run out of memory: try fewer --workers)" if name == "SIGKILL" else ""
        return f"the worker process running this job was killed by {name}{hint}; the other jobs went on"
    return f"the worker process running this job exited with code {exitcode} before writing its record"


@dataclass
class _Running:
    job: Job
    process: multiprocessing.process.BaseProcess
    on_epoch: EpochCallback | None
    record: dict[str, Any] | None = None


def run_in_pool(
    jobs: Sequence[Job], out_dir: str, settings: PluginSettings, layout: WorkerLayout,
    claim: Claim, release: Release, on_start: JobStart, on_done: JobDone,
) -> None:
    """Up to ``layout.workers`` jobs at a time, each in a fresh process (see ``worker_context``) with
    ``layout.threads`` threads. A process that dies fails only its own job; the others run on. On an interrupt
    (KeyboardInterrupt or the runner's SIGTERM) nothing new starts and the running processes are stopped within
    seconds."""
    context = worker_context()
    queue = list(jobs)
    running: dict[Connection, _Running] = {}

    def finish(conn: Connection) -> None:
        slot = running.pop(conn)
        conn.close()
        slot.process.join()
        release(slot.job)
        record = slot.record or crash_record(slot.job, out_dir, death_reason(slot.process.exitcode), layout)
        on_done(slot.job, record)

    try:
        while queue or running:
            while queue and len(running) < layout.workers:
                job = queue.pop(0)
                if not claim(job):
                    continue
                receive, send = context.Pipe(duplex=False)
                arguments = (job, out_dir, settings, layout, send, os.getpid(), dict(os.environ))
                process = context.Process(target=_worker_main, args=arguments, name=f"dig {job.label}", daemon=True)
                try:
                    _start_registered(process, register=partial(running.__setitem__, receive, _Running(job, process, None)),
                                      abandon=partial(release, job))
                finally:
                    send.close()
                running[receive].on_epoch = on_start(job)
            for conn in wait(list(running), timeout=1.0):
                slot = running[conn]
                try:
                    message = conn.recv()
                except (EOFError, OSError):  # the process has exited and its end of the pipe is closed
                    finish(conn)
                    continue
                if message[0] == "record":
                    slot.record = message[1]
                elif message[0] == "epoch" and slot.on_epoch is not None:
                    slot.on_epoch(*message[1:])
    except BaseException:
        for slot in running.values():
            slot.process.terminate()
        for slot in running.values():
            slot.process.join(5)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            release(slot.job)
        raise


def run_with_submitit(
    jobs: Sequence[Job], out_dir: str, settings: PluginSettings, layout: WorkerLayout, cluster: str | None,
    claim: Claim, release: Release, on_start: JobStart, on_done: JobDone,
) -> None:
    """Submit every job to Slurm through submitit (``cluster=None`` picks Slurm when available, ``"local"``
    runs them as local subprocesses, as the tests do). Records are written by the jobs themselves; on an
    interrupt the jobs not finished yet are cancelled."""
    try:
        import submitit
    except ImportError as exc:
        raise DigError("the submitit executor needs submitit: pip install 'dig-bench[cluster]'") from exc
    folder = Path(out_dir) / ".submitit"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(timeout_min=24 * 60, cpus_per_task=layout.threads, name="dig-bench")
    # A cluster queues everything at once; submitit's local executor starts every job it is given, so feed
    # it ``workers`` at a time.
    wave = layout.workers if executor.cluster == "local" else len(jobs)
    for first in range(0, len(jobs), max(wave, 1)):
        pending = []
        try:
            for job in jobs[first : first + wave]:
                if not claim(job):
                    continue
                on_start(job)
                pending.append((job, executor.submit(execute_in_worker, job, out_dir, settings, layout)))
            for job, handle in pending:
                try:
                    record = handle.result()
                except Exception as exc:  # noqa: BLE001 - a job that died on the cluster is a failed record
                    record = crash_record(job, out_dir, f"submitit job {handle.job_id} failed: {exc}", layout)
                release(job)
                on_done(job, record)
        except BaseException:
            for job, handle in pending:
                if not handle.done():
                    handle.cancel(check=False)
                release(job)
            raise
