"""The runner: a BenchSpec becomes jobs, jobs become records, records become the track's CSV."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dig.errors import DigError
from dig.plugins import PluginSettings
from dig.registry import Registry
from dig.runner.executors import EXECUTORS, run_in_pool, run_in_process, run_with_submitit
from dig.runner.records import COLUMNS, finished_record, gather_csv, load_records
from dig.runner.spec import BenchSpec, Job, expand_jobs

__all__ = [
    "COLUMNS", "BenchResult", "BenchSpec", "Job", "PluginSettings", "expand_jobs", "load_records", "run_bench",
]


@dataclass
class BenchResult:
    jobs: list[Job]
    skipped: list[Job] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    csv_path: Path | None = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") != "ok"]


class Progress:
    """Hooks the runner calls; the CLI plugs rich progress bars in here. The default is silent."""

    def start(self, total: int, skipped: int) -> None: ...

    def job_started(self, job: Job) -> Callable[[int, int, Any], None] | None:
        return None

    def job_finished(self, job: Job, record: dict[str, Any]) -> None: ...

    def stop(self) -> None: ...


def run_bench(spec: BenchSpec, registry: Registry, progress: Progress | None = None) -> BenchResult:
    """Run every job of ``spec`` not already finished under ``spec.out``; always gather the CSV at the end,
    also when interrupted, so records written so far are kept and a re-run resumes."""
    if spec.executor not in EXECUTORS:
        raise DigError(f"unknown executor {spec.executor!r}; use one of {', '.join(EXECUTORS)}")
    if spec.workers < 1:
        raise DigError(f"--workers must be at least 1, got {spec.workers}")
    progress = progress or Progress()
    track = registry.get("track", spec.track).obj
    jobs = expand_jobs(registry, spec)
    result = BenchResult(jobs=jobs)
    todo: list[Job] = []
    for job in jobs:
        previous = finished_record(spec.out, job.track, job.config_hash)
        if previous is not None:
            result.skipped.append(job)
            result.records.append(previous)
        else:
            todo.append(job)

    cost = getattr(track, "job_cost", None)
    if cost is not None:  # longest first, so that no worker idles at the end waiting on a long last job
        todo.sort(key=lambda job: -cost(registry, job))

    def done(job: Job, record: dict[str, Any]) -> None:
        result.records.append(record)
        progress.job_finished(job, record)

    out = str(spec.out)
    progress.start(len(jobs), len(result.skipped))
    try:
        if todo and spec.executor == "submitit":
            run_with_submitit(todo, out, spec.workers, spec.plugins, spec.submitit_cluster, progress.job_started, done)
        elif todo and spec.workers > 1:
            run_in_pool(todo, out, spec.workers, spec.plugins, progress.job_started, done)
        elif todo:
            run_in_process(todo, out, registry, progress.job_started, done)
    finally:
        progress.stop()
        result.csv_path = gather_csv(out, spec.track)
    return result
