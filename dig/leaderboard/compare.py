"""Regression check of a new result CSV against a committed leaderboard, direction-aware."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dig.errors import DigError
from dig.leaderboard.table import Aggregate, aggregate

DEFAULT_TOLERANCE = 0.10


@dataclass(frozen=True)
class Comparison:
    reference: Aggregate
    new: Aggregate | None
    tolerance: float

    @property
    def change(self) -> float:
        """Relative change in the bad direction (positive = worse)."""
        if self.new is None:
            return math.inf
        ref, new = self.reference.mean, self.new.mean
        worse = (ref - new) if self.reference.higher_is_better else (new - ref)
        return worse / abs(ref) if ref else (math.inf if worse > 0 else 0.0)

    @property
    def regressed(self) -> bool:
        return self.new is None or not math.isfinite(self.new.mean) or self.change > self.tolerance

    @property
    def status(self) -> str:
        if self.new is None:
            return "MISSING"
        return "REGRESSED" if self.regressed else "ok"


def parse_tolerances(items: Sequence[str]) -> dict[str, float]:
    """``["U0_mae_meV=0.2", "*_meV=0.15"]`` -> {pattern: relative tolerance}."""
    out = {}
    for item in items:
        pattern, sep, value = item.partition("=")
        try:
            tolerance = float(value)
        except ValueError:
            tolerance = -1.0
        if not sep or not pattern or tolerance < 0:
            raise DigError(f"bad tolerance {item!r}; write METRIC=RELATIVE, e.g. U0_mae_meV=0.2 or '*_meV=0.15'")
        out[pattern] = tolerance
    return out


def tolerance_for(metric: str, tolerances: Mapping[str, float], default: float) -> float:
    if metric in tolerances:
        return tolerances[metric]
    for pattern, value in tolerances.items():
        if fnmatch.fnmatchcase(metric, pattern):
            return value
    return default


def compare(
    reference_rows: Sequence[dict[str, str]],
    new_rows: Sequence[dict[str, str]],
    tolerances: Mapping[str, float] | None = None,
    default: float = DEFAULT_TOLERANCE,
) -> list[Comparison]:
    """Every test metric of the reference, matched by (track, dataset, model, metric) and budget, against the new
    run's mean over seeds. A metric missing from the new run, or only present as failed jobs, is a regression."""
    tolerances = tolerances or {}
    new = {(a.key, a.budget): a for a in aggregate(new_rows)}
    return [
        Comparison(ref, new.get((ref.key, ref.budget)), tolerance_for(ref.metric, tolerances, default))
        for ref in aggregate(reference_rows)
    ]
