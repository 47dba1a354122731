"""What the runner asks of every track. Each track's own ``protocol.py`` defines what the track asks of its
datasets, models and evaluators; this module only fixes the track <-> runner contract."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from dig.registry import Entry, Registry

BUDGETS = ("smoke", "default", "paper")


@dataclass(frozen=True)
class Metric:
    """One evaluated number. ``name`` ends with its unit (``U0_mae_meV``); ``unit`` repeats it for tables."""

    split: str
    name: str
    value: float
    unit: str
    higher_is_better: bool


@dataclass
class JobOutcome:
    metrics: list[Metric]
    epochs: float  # epochs trained (a fraction where an equal-time budget gives part of one)
    params: int
    train_s: float
    eval_s: float
    extra: dict[str, Any] = field(default_factory=dict)


EpochCallback = Callable[[int, int, Mapping[str, float]], None]


@runtime_checkable
class Track(Protocol):
    """A benchmark track as the runner sees it."""

    name: str
    default_datasets: Sequence[str]

    def prepare(self, dataset: Entry, budget: str, options: Mapping[str, Any]) -> None:
        """Build or verify the dataset's cache once, before any job starts (never inside workers)."""

    def job_config(self, dataset: Entry, model: Entry, budget: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Every setting that determines the job's result (JSON-serialisable); it is hashed into the job id."""

    # Optional: ``job_cost(registry, job) -> float``, a rough relative CPU time; the runner starts the
    # costliest jobs first so that parallel workers finish together.
    # Optional: ``method_kind``, the registry kind a job ranks ("model" unless set; xgraph: "explainer").
    # Optional: ``unsuited(dataset, model, budget) -> str | None``, why a model does not apply to a dataset
    # (e.g. a baseline that needs trajectories); such pairs are left out of a bench that names no --models,
    # and refused with that reason when the user names the model.

    def run_job(
        self,
        registry: Registry,
        dataset: Entry,
        model: Entry,
        seed: int,
        config: Mapping[str, Any],
        on_epoch: EpochCallback | None = None,
    ) -> JobOutcome:
        """Train with validation-only model selection and evaluate the test split once."""


def per_budget(meta: Mapping[str, Any], key: str, budget: str) -> dict[str, Any]:
    """``meta[key][budget]`` (falling back to ``meta[key]["default"]``) as a new dict: a registered entry's
    per-budget settings, e.g. ``hparams={"smoke": {...}, "default": {...}}``."""
    table = meta.get(key) or {}
    return dict(table.get(budget, table.get("default", {})))


def metric_unit(name: str) -> str:
    """Metric names end with their unit after the last underscore: ``U0_mae_meV`` -> ``meV``."""
    return name.rsplit("_", 1)[-1] if "_" in name else ""
