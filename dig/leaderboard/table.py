"""Read result CSVs and aggregate them over seeds: mean, unbiased std, n."""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dig.errors import DataError
from dig.runner.records import COLUMNS

REQUIRED = ("track", "dataset", "split", "model", "seed", "metric", "value", "unit", "higher_is_better", "status")


def read_rows(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; produce it with `dig bench` (it writes <out>/<track>.csv)")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(
                f"{path} is not a dig result CSV: columns {missing} are missing (expected {', '.join(COLUMNS)})"
            )
        rows = list(reader)
    for number, row in enumerate(rows, start=2):
        if row["status"] == "ok" and row["metric"]:
            try:
                float(row["value"])
            except ValueError as exc:
                raise DataError(f"{path}:{number}: value {row['value']!r} of {row['metric']} is not a number") from exc
    return rows


@dataclass(frozen=True)
class Aggregate:
    track: str
    dataset: str
    model: str
    plugin: str
    budget: str
    metric: str
    unit: str
    higher_is_better: bool
    mean: float
    std: float  # unbiased (n - 1); NaN for a single seed
    n: int
    seeds: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.track, self.dataset, self.model, self.metric)

    def formatted(self, digits: int = 4) -> str:
        mean = f"{self.mean:.{digits}g}"
        return mean if self.n < 2 or math.isnan(self.std) else f"{mean} ± {self.std:.2g}"


def aggregate(rows: Iterable[dict[str, str]], split: str = "test") -> list[Aggregate]:
    """Mean and unbiased std over seeds of every (track, dataset, model, budget, metric) with status ok."""
    groups: dict[tuple, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if row["status"] == "ok" and row["split"] == split and row["metric"]:
            key = (row["track"], row["dataset"], row["model"], row.get("budget", ""), row["metric"])
            groups[key].append(row)
    out = []
    for (track, dataset, model, budget, metric), members in sorted(groups.items()):
        values = [float(r["value"]) for r in members]
        out.append(
            Aggregate(
                track=track, dataset=dataset, model=model, plugin=members[0].get("plugin", ""), budget=budget,
                metric=metric, unit=members[0]["unit"], higher_is_better=members[0]["higher_is_better"] == "true",
                mean=statistics.fmean(values), std=statistics.stdev(values) if len(values) > 1 else math.nan,
                n=len(values), seeds=tuple(sorted(r["seed"] for r in members)),
            )
        )
    return out


def failed_jobs(rows: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r["status"] != "ok"]


def metric_order(aggregates: Sequence[Aggregate]) -> list[str]:
    """Metrics in first-seen order, with the summary metrics (std_mae_pct) last."""
    seen: list[str] = []
    for agg in aggregates:
        if agg.metric not in seen:
            seen.append(agg.metric)
    return sorted(seen, key=lambda m: m.startswith("std_"))
