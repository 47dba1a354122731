"""Regression check of a new result CSV against a committed leaderboard, direction-aware."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dig.errors import DataError, DigError
from dig.leaderboard.table import Aggregate, aggregate

DEFAULT_TOLERANCE = 0.10


@dataclass(frozen=True)
class Comparison:
    reference: Aggregate
    new: Aggregate | None
    tolerance: float

    @property
    def config_differs(self) -> bool:
        """Both sides know their configuration and it is not the same (other settings, code or budget)."""
        return bool(self.new and self.reference.config_id and self.new.config_id
                    and self.reference.config_id != self.new.config_id)

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
        values = (self.reference.mean, self.new.mean) if self.new is not None else ()
        return self.new is None or not all(math.isfinite(v) for v in values) or self.change > self.tolerance

    @property
    def status(self) -> str:
        if self.new is None:
            return "MISSING"
        status = "REGRESSED" if self.regressed else "ok"
        return f"{status} (other config)" if self.config_differs else status


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
    run's mean over seeds. A metric missing from the new run, or only present as failed jobs, is a regression.

    Refused with a DataError: runs of disjoint budgets (nothing would match), and a side that holds one model
    in several configurations (which one would be compared is ambiguous)."""
    tolerances = tolerances or {}
    references, news = aggregate(reference_rows), aggregate(new_rows)
    for side, aggs in (("reference", references), ("new run", news)):
        mixed = sorted({f"{a.dataset}/{a.model} ({a.budget})" for a in aggs if a.mixed})
        if mixed:
            raise DataError(f"the {side} holds {', '.join(mixed)} in several configurations; compare one run "
                            "of each (dig bench into a fresh --out)")
    ref_budgets, new_budgets = {a.budget for a in references}, {a.budget for a in news}
    if ref_budgets and new_budgets and not ref_budgets & new_budgets:
        raise DataError(f"the new run's budget ({', '.join(sorted(new_budgets))}) differs from the reference's "
                        f"({', '.join(sorted(ref_budgets))}): every row would be missing; compare runs of the same "
                        f"budget (dig bench --budget {sorted(ref_budgets)[0]})")
    new = {(a.key, a.budget): a for a in news}
    return [Comparison(ref, new.get((ref.key, ref.budget)), tolerance_for(ref.metric, tolerances, default))
            for ref in references]
