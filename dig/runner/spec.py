"""A bench specification and its expansion into jobs (track x dataset x model x seed)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from dig.errors import DigError
from dig.io import stable_hash
from dig.plugins import PluginSettings
from dig.registry import Registry
from dig.tracks.base import BUDGETS, Track

MAX_SEED = 2**32 - 1  # numpy's RandomState takes seeds in [0, 2**32)


@dataclass
class BenchSpec:
    """What to run. ``workers``: parallel jobs, or ``"auto"`` (usable cores // ``threads``, capped at the
    number of jobs). ``threads``: torch threads per job, fixed so that results do not depend on ``workers``."""

    track: str
    datasets: list[str] | None = None
    models: list[str] | None = None
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    budget: str = "default"
    out: str = "results"
    executor: str = "local"
    workers: int | str = "auto"
    threads: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    plugins: PluginSettings = field(default_factory=PluginSettings)
    submitit_cluster: str | None = None


@dataclass(frozen=True)
class WorkerLayout:
    """How a job ran: torch threads in its process, parallel workers, executor. Recorded with every result."""

    threads: int = 1
    workers: int = 1
    executor: str = "in-process"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def validate_names(option: str, names: list[str] | None) -> None:
    if names is None:
        return
    if not names:
        raise DigError(f"{option} is empty; name at least one (see `dig list`), or leave {option} out for all")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DigError(f"{option} names {', '.join(twice)} more than once")


def validate_seeds(seeds: list[int]) -> None:
    if not seeds:
        raise DigError("no seeds given; pass e.g. --seeds 0,1,2")
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise DigError(f"--seeds repeats {', '.join(map(str, twice))}: every seed would train twice; list each once")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise DigError(f"seeds must lie in [0, 2**32 - 1], got {', '.join(map(str, bad))}")


@dataclass(frozen=True)
class Job:
    track: str
    dataset: str
    model: str
    plugin: str
    seed: int
    budget: str
    config: dict[str, Any]
    config_hash: str

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.model}/seed{self.seed}"


def job_hash(track: str, dataset: str, model: str, seed: int, budget: str, config: dict[str, Any]) -> str:
    return stable_hash({"track": track, "dataset": dataset, "model": model, "seed": seed, "budget": budget,
                        "config": config})


def expand_jobs(registry: Registry, spec: BenchSpec) -> list[Job]:
    """All jobs of ``spec``; every name is checked before anything runs."""
    if spec.budget not in BUDGETS:
        raise DigError(f"unknown budget {spec.budget!r}; use one of {', '.join(BUDGETS)}")
    validate_seeds(spec.seeds)
    validate_names("--datasets", spec.datasets)
    validate_names("--models", spec.models)
    track_entry = registry.get("track", spec.track)
    track: Track = track_entry.obj
    dataset_names = list(track.default_datasets) if spec.datasets is None else spec.datasets
    kind = getattr(track, "method_kind", "model")  # what a job ranks: models (3d) or explainers (xgraph)
    model_names = registry.names(kind, spec.track) if spec.models is None else spec.models
    if not model_names:
        raise DigError(f"track {spec.track!r} has no registered {kind}s; install a plugin that provides one")
    datasets = [registry.get("dataset", name, track=spec.track) for name in dataset_names]
    models = [registry.get(kind, name, track=spec.track) for name in model_names]
    jobs = []
    unsuited = getattr(track, "unsuited", None)
    for dataset in datasets:
        track.prepare(dataset, spec.budget, spec.options)
        for model in models:
            reason = unsuited(dataset, model, spec.budget) if unsuited is not None else None
            if reason and spec.models is None:
                continue
            if reason:
                raise DigError(f"model {model.name!r} does not apply to dataset {dataset.name!r}: {reason}; "
                               f"leave it out of --models or pick other --datasets")
            config = track.job_config(dataset, model, spec.budget, spec.options)
            for seed in spec.seeds:
                digest = job_hash(spec.track, dataset.name, model.name, seed, spec.budget, config)
                jobs.append(Job(spec.track, dataset.name, model.name, model.plugin, seed, spec.budget, config, digest))
    return jobs
