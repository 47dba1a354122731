"""Run one job and write its record. Used in-process and inside worker processes alike."""

from __future__ import annotations

import math
import os
import platform
import resource
import subprocess
import time
import traceback
from dataclasses import asdict
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

import dig
from dig.errors import TrainingError
from dig.io import bench_workspace
from dig.plugins import PluginSettings, load_plugins
from dig.registry import Registry
from dig.runner.records import RECORD_SCHEMA_VERSION, write_record
from dig.runner.spec import Job, WorkerLayout
from dig.tracks.base import EpochCallback, Metric

WORKSPACE = ".work"  # under --out: what a track's jobs share within one bench (see dig.io.bench_workspace)


@lru_cache(maxsize=1)
def git_sha() -> str:
    """The commit of the dig source tree (or of the working directory), '' outside git."""
    for folder in (Path(dig.__file__).resolve().parent.parent, Path.cwd()):
        try:
            out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0:
            return out.stdout.strip()
    return ""


def device_name() -> str:
    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(0)}"
    return f"cpu:{platform.machine()}"


def _peak_mem_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def non_finite_metrics(metrics: list[Metric]) -> list[str]:
    return [f"{m.split}/{m.name}={m.value}" for m in metrics if not math.isfinite(m.value)]


def execute_job(
    job: Job,
    out_dir: str,
    registry: Registry | None = None,
    settings: PluginSettings | None = None,
    on_epoch: EpochCallback | None = None,
    layout: WorkerLayout | None = None,
) -> dict[str, Any]:
    """Train and evaluate ``job`` with ``layout.threads`` torch threads; write ``out_dir/<track>/<hash>.json``
    atomically; return the record.

    Any exception (a NaN loss included) and any non-finite metric become a record with ``status="failed"``
    and the reason. The thread count and worker layout are part of the record's provenance: the float
    reduction order, and so the last digits, depend on the thread count, never on the number of workers.
    """
    layout = layout or WorkerLayout()
    if registry is None:
        registry = load_plugins(settings or PluginSettings.resolve()).registry
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(layout.threads)
    record: dict[str, Any] = {
        "schema_version": RECORD_SCHEMA_VERSION,
        **{k: v for k, v in asdict(job).items()},
        "dig_version": dig.__version__,
        "torch_version": torch.__version__,
        "git_sha": git_sha(),
        "device": device_name(),
        "host": platform.node(),
        "pid": os.getpid(),
        "threads": layout.threads,
        "workers": layout.workers,
        "executor": layout.executor,
    }
    start = time.perf_counter()
    try:
        track = registry.get("track", job.track).obj
        dataset = registry.get("dataset", job.dataset, track=job.track)
        kind = getattr(registry.get("track", job.track).obj, "method_kind", "model")
        model = registry.get(kind, job.model, track=job.track)
        with bench_workspace(Path(out_dir) / WORKSPACE / job.track):
            outcome = track.run_job(registry, dataset, model, job.seed, job.config, on_epoch)
        bad = non_finite_metrics(outcome.metrics)
        if bad:
            raise TrainingError(f"{job.model}: non-finite metrics {', '.join(bad)}; the model's predictions are not "
                                "finite numbers (check its output scaling, or lower the learning rate)")
        record.update(
            status="ok",
            reason="",
            metrics=[asdict(m) for m in outcome.metrics],
            epochs=outcome.epochs,
            params=outcome.params,
            train_s=round(outcome.train_s, 3),
            eval_s=round(outcome.eval_s, 3),
            extra=outcome.extra,
        )
    except Exception as exc:  # noqa: BLE001 - every failure becomes a record; the bench goes on
        record.update(
            status="failed",
            reason=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
            metrics=[],
            epochs=0,
            params=0,
            train_s=round(time.perf_counter() - start, 3),
            eval_s=0.0,
        )
    finally:
        torch.set_num_threads(previous_threads)
    record["peak_mem_mb"] = round(_peak_mem_mb(), 1)
    record["wall_s"] = round(time.perf_counter() - start, 3)
    record["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_record(out_dir, record)
    return record


def execute_in_worker(job: Job, out_dir: str, settings: PluginSettings, layout: WorkerLayout) -> dict[str, Any]:
    """Entry point of submitit workers: a fresh process with its own registry."""
    return execute_job(job, out_dir, settings=settings, layout=layout)
