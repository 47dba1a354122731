"""Evaluators of the 3D track: pure functions of predictions and references, units in metric names."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dig.tracks.threed.protocol import TargetSpec


def mae_per_target(predictions: np.ndarray, references: np.ndarray, targets: Sequence[TargetSpec]) -> dict[str, float]:
    """MAE_t = mean_i |y_hat_it - y_it| for every target, in the target's report unit (meV for energies),
    and the standardized MAE of Schütt et al. / DIG: std_mae_pct = 100 * mean_t(MAE_t / std_t), with std_t the
    standard deviation of the references (over the targets evaluated, not necessarily all twelve)."""
    predictions = np.asarray(predictions, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    if predictions.shape != references.shape or predictions.ndim != 2 or predictions.shape[1] != len(targets):
        raise ValueError(
            f"predictions {predictions.shape} and references {references.shape} must both be [n, {len(targets)}]"
        )
    if predictions.shape[0] == 0:
        raise ValueError("cannot evaluate an empty split")
    mae = np.abs(predictions - references).mean(axis=0)
    out = {f"{t.name}_mae_{t.report_unit}": float(mae[i] * t.report_scale) for i, t in enumerate(targets)}
    std = references.std(axis=0)
    if len(references) > 1 and np.all(std > 0):
        out["std_mae_pct"] = float(100.0 * np.mean(mae / std))
    return out


# forces_unit of a dataset -> (unit in the metric name, scale to it)
FORCE_UNITS = {"eV/A": ("meVA", 1000.0), "kcal/mol/A": ("kcalmolA", 1.0)}


def force_mae(predictions: np.ndarray, references: np.ndarray, unit: str) -> dict[str, float]:
    """Force MAE over all atoms and Cartesian components, in the report unit (meV/Å for eV/Å data):
    forces_mae = mean_{a, c} |F_hat_ac - F_ac|."""
    predictions = np.asarray(predictions, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    if predictions.shape != references.shape or predictions.ndim != 2 or predictions.shape[1] != 3:
        raise ValueError(f"forces must both be [atoms, 3], got {predictions.shape} and {references.shape}")
    if unit not in FORCE_UNITS:
        raise ValueError(f"unknown force unit {unit!r}; known: {', '.join(FORCE_UNITS)}")
    name, scale = FORCE_UNITS[unit]
    return {f"forces_mae_{name}": float(np.abs(predictions - references).mean() * scale)}
