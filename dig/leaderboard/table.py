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
    """The rows of a dig result CSV. Columns a CSV written by an older dig lacks are filled with ''. A file
    that is no such CSV, or an ok row whose value is not a finite number, is a DataError naming the line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; produce it with `dig bench` (it writes <out>/<track>.csv)")
    if path.is_dir():
        raise DataError(f"{path} is a folder; pass a result CSV such as {path / 'T.csv'} (written by dig bench)")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(
                    f"{path} is not a dig result CSV: columns {missing} are missing (expected {', '.join(COLUMNS)})"
                )
            rows = [{**dict.fromkeys(COLUMNS, ""), **{k: v for k, v in row.items() if k is not None}} for row in reader]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a text CSV (byte {exc.start} is not UTF-8); pass a result CSV written by "
                        "dig bench") from exc
    except (OSError, csv.Error) as exc:
        raise DataError(f"{path} cannot be read as a CSV ({exc})") from exc
    for number, row in enumerate(rows, start=2):
        if row["status"] == "ok" and row["metric"]:
            try:
                value = float(row["value"])
            except ValueError as exc:
                raise DataError(f"{path}:{number}: value {row['value']!r} of {row['metric']} is not a number") from exc
            if not math.isfinite(value):
                raise DataError(
                    f"{path}:{number}: {row['model']}/{row['metric']} is {row['value']} in a row with status ok; a "
                    "non-finite metric means the job failed: re-run it with this dig (which marks such jobs "
                    "failed) or delete the row"
                )
    return rows


@dataclass(frozen=True)
class Aggregate:
    """Mean over the seeds of one configuration (``config_id``; '' in CSVs from before it was recorded).
    ``mixed`` marks a (dataset, model, budget) that the rows hold in several configurations: each is its own
    aggregate, never averaged together."""

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
    config_id: str = ""
    mixed: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.track, self.dataset, self.model, self.metric)

    @property
    def label(self) -> str:
        return f"{self.model} [config {self.config_id}]" if self.mixed else self.model

    def formatted(self, digits: int = 4) -> str:
        mean = f"{self.mean:.{digits}g}"
        return mean if self.n < 2 or math.isnan(self.std) else f"{mean} ± {self.std:.2g}"


def _unique_rows(rows: Iterable[dict[str, str]], split: str) -> tuple[list[dict[str, str]], list[str]]:
    """Finished rows of ``split``, each (configuration, seed, metric) once. Exact duplicates are dropped
    with a note; two different values for one seed of one configuration are an error."""
    seen: dict[tuple, dict[str, str]] = {}
    duplicates: dict[tuple, int] = defaultdict(int)
    for row in rows:
        if row["status"] != "ok" or row["split"] != split or not row["metric"]:
            continue
        key = (row["track"], row["dataset"], row["model"], row["budget"], row["config_id"], row["seed"], row["metric"])
        if key in seen:
            if float(seen[key]["value"]) != float(row["value"]):
                raise DataError(
                    f"{row['dataset']}/{row['model']} seed {row['seed']} has two values of {row['metric']} in one "
                    f"configuration ({seen[key]['value']} and {row['value']}): the CSV was merged from two runs; "
                    "keep one of them"
                )
            duplicates[key[:3] + (key[5],)] += 1
            continue
        seen[key] = row
    notes = [f"{dataset}/{model} seed {seed}: a row appears {count + 1} times; counted once"
             for (_, dataset, model, seed), count in sorted(duplicates.items())]
    return list(seen.values()), sorted(set(notes))


def audit(rows: Iterable[dict[str, str]], split: str = "test") -> list[str]:
    """What a reader of these rows must know: duplicate rows, and models run in several configurations."""
    unique, notes = _unique_rows(rows, split)
    configs: dict[tuple, set[str]] = defaultdict(set)
    for row in unique:
        configs[(row["dataset"], row["model"], row["budget"])].add(row["config_id"])
    for (dataset, model, budget), ids in sorted(configs.items()):
        if len(ids) > 1:
            notes.append(f"{dataset}/{model} ({budget}) was run in {len(ids)} configurations "
                         f"({', '.join(sorted(ids))}): not averaged together; re-run into a fresh --out to compare")
    return notes


def aggregate(rows: Iterable[dict[str, str]], split: str = "test") -> list[Aggregate]:
    """Mean and unbiased std over seeds of every (track, dataset, model, budget, configuration, metric) with
    status ok; each seed counts once."""
    unique, _ = _unique_rows(rows, split)
    groups: dict[tuple, list[dict[str, str]]] = defaultdict(list)
    configs: dict[tuple, set[str]] = defaultdict(set)
    for row in unique:
        groups[(row["track"], row["dataset"], row["model"], row["budget"], row["config_id"], row["metric"])].append(row)
        configs[(row["track"], row["dataset"], row["model"], row["budget"])].add(row["config_id"])
    out = []
    for (track, dataset, model, budget, config, metric), members in sorted(groups.items()):
        values = [float(r["value"]) for r in members]
        out.append(
            Aggregate(
                track=track, dataset=dataset, model=model, plugin=members[0].get("plugin", ""), budget=budget,
                metric=metric, unit=members[0]["unit"], higher_is_better=members[0]["higher_is_better"] == "true",
                mean=statistics.fmean(values), std=statistics.stdev(values) if len(values) > 1 else math.nan,
                n=len(values), seeds=tuple(sorted(r["seed"] for r in members)), config_id=config,
                mixed=len(configs[(track, dataset, model, budget)]) > 1,
            )
        )
    return out


def failed_jobs(rows: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """One row per failed job (dataset, model, seed, budget, reason)."""
    seen: dict[tuple, dict[str, str]] = {}
    for row in rows:
        if row["status"] != "ok":
            seen.setdefault((row["dataset"], row["model"], row["seed"], row["budget"], row["config_hash"]), row)
    return list(seen.values())


def metric_order(aggregates: Sequence[Aggregate]) -> list[str]:
    """Metrics in first-seen order, with the summary metrics (std_mae_4targets_pct) last."""
    seen: list[str] = []
    for agg in aggregates:
        if agg.metric not in seen:
            seen.append(agg.metric)
    return sorted(seen, key=lambda m: m.startswith("std_"))
