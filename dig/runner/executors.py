"""Executors: in-process, local worker processes (one fresh process per job), and submitit (Slurm).

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


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (even by SIGKILL, which the parent cannot catch),
    so no worker trains on as an orphan after the bench is gone; its lock then names a dead process."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _worker_main(job: Job, out_dir: str, settings: PluginSettings, layout: WorkerLayout, conn: Connection,
                 parent: int) -> None:
    """Body of a worker process: run one job, stream its epochs to the parent, send its record last."""
    _die_with_parent(parent)

    def on_epoch(epoch: int, total: int, info: Any) -> None:
        conn.send(("epoch", epoch, total, dict(info)))

    record = execute_job(job, out_dir, settings=settings, on_epoch=on_epoch, layout=layout)
    conn.send(("record", record))
    conn.close()
    # The record is on disk and with the parent, which waits for this process to end before starting the next
    # job: skip the interpreter's teardown of torch and the plugins (0.3-0.4 s per job, measured).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Processes started inside inherit SIGINT as ignored (SIG_IGN survives exec, and Python leaves an ignored
    SIGINT alone), so a Ctrl-C reaches only the parent, which stops them itself: no traceback from each."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
    """Up to ``layout.workers`` jobs at a time, each in a fresh spawned process with ``layout.threads``
    threads. A process that dies fails only its own job; the others run on. On an interrupt (KeyboardInterrupt
    or the runner's SIGTERM) nothing new starts and the running processes are stopped within seconds."""
    context = multiprocessing.get_context("spawn")
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
                process = context.Process(target=_worker_main, args=(job, out_dir, settings, layout, send, os.getpid()),
                                          name=f"dig {job.label}", daemon=True)
                try:
                    with _children_ignore_sigint():
                        process.start()
                finally:
                    send.close()
                running[receive] = _Running(job, process, on_start(job))
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
