"""Executors: in-process, a local process pool, and submitit (Slurm, or its local executor)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dig.errors import DigError
from dig.plugins import PluginSettings
from dig.registry import Registry
from dig.runner.execute import execute_in_worker, execute_job
from dig.runner.records import RECORD_SCHEMA_VERSION, write_record
from dig.runner.spec import Job
from dig.tracks.base import EpochCallback

JobDone = Callable[[Job, dict[str, Any]], None]
JobStart = Callable[[Job], EpochCallback | None]

EXECUTORS = ("local", "submitit")


def _crash_record(job: Job, out_dir: str, reason: str) -> dict[str, Any]:
    record = {
        "schema_version": RECORD_SCHEMA_VERSION, **asdict(job), "status": "failed", "reason": reason, "metrics": [],
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_record(out_dir, record)
    return record


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def run_in_process(jobs: Sequence[Job], out_dir: str, registry: Registry, on_start: JobStart, on_done: JobDone) -> None:
    for job in jobs:
        on_done(job, execute_job(job, out_dir, registry=registry, on_epoch=on_start(job)))


def run_in_pool(
    jobs: Sequence[Job], out_dir: str, workers: int, settings: PluginSettings, on_start: JobStart, on_done: JobDone
) -> None:
    threads = threads_per_worker(workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {}
        for job in jobs:
            on_start(job)
            futures[pool.submit(execute_in_worker, job, out_dir, settings, threads)] = job
        for future in as_completed(futures):
            job = futures[future]
            try:
                record = future.result()
            except BrokenProcessPool as exc:
                record = _crash_record(job, out_dir, f"worker process died: {exc}")
            except Exception as exc:  # noqa: BLE001
                record = _crash_record(job, out_dir, f"{type(exc).__name__}: {exc}")
            on_done(job, record)


def run_with_submitit(
    jobs: Sequence[Job], out_dir: str, workers: int, settings: PluginSettings, cluster: str | None,
    on_start: JobStart, on_done: JobDone,
) -> None:
    """Submit every job to Slurm through submitit (``cluster=None`` picks Slurm when available, ``"local"``
    runs them as local subprocesses, as the tests do). Records are written by the jobs themselves."""
    try:
        import submitit
    except ImportError as exc:
        raise DigError("the submitit executor needs submitit: pip install 'dig-bench[cluster]'") from exc
    folder = Path(out_dir) / ".submitit"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    threads = threads_per_worker(workers) if executor.cluster == "local" else 2
    executor.update_parameters(timeout_min=24 * 60, cpus_per_task=threads, name="dig-bench")
    # A cluster queues everything at once; submitit's local executor starts every job it is given, so feed
    # it ``workers`` at a time.
    wave = max(1, workers) if executor.cluster == "local" else len(jobs)
    for first in range(0, len(jobs), max(wave, 1)):
        pending = []
        for job in jobs[first : first + wave]:
            on_start(job)
            pending.append((job, executor.submit(execute_in_worker, job, out_dir, settings, threads)))
        for job, handle in pending:
            try:
                record = handle.result()
            except Exception as exc:  # noqa: BLE001 - a job that died on the cluster is a failed record
                record = _crash_record(job, out_dir, f"submitit job {handle.job_id} failed: {exc}")
            on_done(job, record)
