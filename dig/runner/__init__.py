"""The runner: a BenchSpec becomes jobs, jobs become records, records become the track's CSV."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dig.errors import DigError
from dig.io import atomic_write_text
from dig.plugins import PluginSettings
from dig.registry import Registry
from dig.runner.executors import EXECUTORS, run_in_pool, run_in_process, run_with_submitit
from dig.runner.locks import release_lock, try_lock
from dig.runner.records import (
    COLUMNS,
    DamagedRecord,
    gather_csv,
    load_records,
    read_record,
    record_path,
    scan_records,
)
from dig.runner.spec import BenchSpec, Job, WorkerLayout, expand_jobs, usable_cores

__all__ = [
    "COLUMNS", "BenchResult", "BenchSpec", "Job", "PluginSettings", "Terminated", "WorkerLayout", "expand_jobs",
    "load_records", "resolve_workers", "run_bench",
]


def finished_record(out_dir: str, track: str, config_hash: str) -> dict[str, Any] | None:
    path = record_path(out_dir, track, config_hash)
    record, _ = read_record(path) if path.exists() else (None, "")
    return record if record is not None and record.get("status") == "ok" else None


@dataclass
class BenchResult:
    jobs: list[Job]
    skipped: list[Job] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    csv_path: Path | None = None
    busy: list[tuple[Job, str]] = field(default_factory=list)  # (job, owner) run by another dig process
    damaged: list[DamagedRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") != "ok"]


class Progress:
    """Hooks the runner calls; the CLI plugs rich progress bars in here. The default is silent."""

    def start(self, total: int, skipped: int, weights: dict[str, float] | None = None) -> None:
        """``weights``: each job still to run (by config_hash) -> its relative cost, for an ETA."""

    def job_started(self, job: Job) -> Callable[[int, int, Any], None] | None:
        return None

    def job_finished(self, job: Job, record: dict[str, Any]) -> None: ...

    def stop(self) -> None: ...


class Terminated(KeyboardInterrupt):
    """SIGTERM (what Slurm and ``timeout`` send), handled exactly like Ctrl-C."""


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resolve_workers(workers: int | str, jobs: int, threads: int) -> tuple[int, list[str]]:
    """The number of parallel jobs and warnings: ``"auto"`` is usable cores // threads; never more than the
    jobs; a warning when workers x threads oversubscribes the cores."""
    cores = usable_cores()
    if threads < 1:
        raise DigError(f"--threads must be at least 1, got {threads}")
    if workers == "auto":
        count = max(1, cores // threads)
    elif isinstance(workers, int) and workers >= 1:
        count = workers
    else:
        raise DigError(f"--workers must be a positive integer or 'auto', got {workers!r}")
    notes = []
    if count * threads > cores:
        notes.append(f"{count} workers x {threads} thread(s) exceed the {cores} usable cores: jobs will compete for "
                     f"them and run slower (--workers auto picks {max(1, cores // threads)})")
    return max(1, min(count, jobs)), notes


def check_out_dir(out: str | Path, track: str) -> None:
    """Fail before any job runs when records cannot be written under ``out``."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise DigError(f"--out {folder} is a file, not a folder; pass a folder for the records (e.g. --out results)")
    try:
        (folder / track).mkdir(parents=True, exist_ok=True)
        probe = folder / track / f".write-test-{os.getpid()}"  # per process: two benches may share an --out
        atomic_write_text(probe, "")
        probe.unlink()
    except OSError as exc:
        raise DigError(f"cannot write records under --out {folder} ({exc.strerror or exc}); pass a writable folder") from exc


def run_bench(spec: BenchSpec, registry: Registry, progress: Progress | None = None) -> BenchResult:
    """Run every job of ``spec`` not already finished under ``spec.out``; always gather the CSV at the end,
    also when interrupted (Ctrl-C or SIGTERM), so records written so far are kept and a re-run resumes.

    Damaged records are set aside and their jobs re-run; a job another ``dig bench`` process is running
    (its lock file is held by a live process) is skipped and reported in ``BenchResult.busy``."""
    if spec.executor not in EXECUTORS:
        raise DigError(f"unknown executor {spec.executor!r}; use one of {', '.join(EXECUTORS)}")
    check_out_dir(spec.out, spec.track)
    progress = progress or Progress()
    track = registry.get("track", spec.track).obj
    jobs = expand_jobs(registry, spec)
    workers, notes = resolve_workers(spec.workers, len(jobs), spec.threads)
    result = BenchResult(jobs=jobs, notes=notes)
    existing, damaged = scan_records(spec.out, spec.track)
    result.damaged.extend(damaged)
    todo: list[Job] = []
    for job in jobs:
        previous = existing.get(job.config_hash)
        if previous is not None and previous.get("status") == "ok":
            result.skipped.append(job)
            result.records.append(previous)
        else:
            todo.append(job)

    cost = getattr(track, "job_cost", None)
    if cost is not None:  # longest first, so that no worker idles at the end waiting on a long last job
        todo.sort(key=lambda job: -cost(registry, job))

    out = str(spec.out)
    held: set[str] = set()  # jobs whose lock this process holds; all released at the end, interrupted or not

    def claim(job: Job) -> bool:
        owner = try_lock(out, job.track, job.config_hash)
        if owner is not None:
            result.busy.append((job, owner.describe()))
            return False
        held.add(job.config_hash)
        finished = finished_record(out, job.track, job.config_hash)
        if finished is not None:  # another process finished it after this one looked
            release(job)
            result.skipped.append(job)
            result.records.append(finished)
            return False
        return True

    def release(job: Job) -> None:
        release_lock(out, job.track, job.config_hash)
        held.discard(job.config_hash)

    def done(job: Job, record: dict[str, Any]) -> None:
        result.records.append(record)
        progress.job_finished(job, record)

    in_process = spec.executor == "local" and workers == 1
    layout = WorkerLayout(spec.threads, workers, "in-process" if in_process else f"{spec.executor}-processes")
    weights = {job.config_hash: float(cost(registry, job)) if cost else 1.0 for job in todo}
    progress.start(len(jobs), len(result.skipped), weights)
    try:
        with _sigterm_interrupts():
            if todo and spec.executor == "submitit":
                run_with_submitit(todo, out, spec.plugins, layout, spec.submitit_cluster, claim, release,
                                  progress.job_started, done)
            elif todo and not in_process:
                run_in_pool(todo, out, spec.plugins, layout, claim, release, progress.job_started, done)
            elif todo:
                run_in_process(todo, out, registry, layout, claim, release, progress.job_started, done)
    finally:
        for config_hash in list(held):
            release_lock(out, spec.track, config_hash)
        progress.stop()
        result.csv_path, late = gather_csv(out, spec.track)
        result.damaged.extend(late)
    return result
