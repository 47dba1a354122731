"""A bench specification and its expansion into jobs (track x dataset x model x seed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dig.errors import DigError
from dig.io import stable_hash
from dig.plugins import PluginSettings
from dig.registry import Registry
from dig.tracks.base import BUDGETS, Track


@dataclass
class BenchSpec:
    track: str
    datasets: list[str] | None = None
    models: list[str] | None = None
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    budget: str = "default"
    out: str = "results"
    executor: str = "local"
    workers: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    plugins: PluginSettings = field(default_factory=PluginSettings)
    submitit_cluster: str | None = None


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
    if not spec.seeds:
        raise DigError("no seeds given; pass e.g. --seeds 0,1,2")
    track_entry = registry.get("track", spec.track)
    track: Track = track_entry.obj
    dataset_names = spec.datasets or list(track.default_datasets)
    model_names = spec.models or registry.names("model", spec.track)
    if not model_names:
        raise DigError(f"track {spec.track!r} has no registered models; install a plugin that provides one")
    datasets = [registry.get("dataset", name, track=spec.track) for name in dataset_names]
    models = [registry.get("model", name, track=spec.track) for name in model_names]
    jobs = []
    for dataset in datasets:
        track.prepare(dataset, spec.budget, spec.options)
        for model in models:
            config = track.job_config(dataset, model, spec.budget, spec.options)
            for seed in spec.seeds:
                digest = job_hash(spec.track, dataset.name, model.name, seed, spec.budget, config)
                jobs.append(Job(spec.track, dataset.name, model.name, model.plugin, seed, spec.budget, config, digest))
    return jobs
