"""Evaluators of the 3D track: pure functions of predictions and references, units in metric names."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dig.tracks.threed.protocol import TargetSpec


def mae_per_target(predictions: np.ndarray, references: np.ndarray, targets: Sequence[TargetSpec]) -> dict[str, float]:
    """MAE_t = mean_i |y_hat_it - y_it| for every target, in the target's report unit (meV for energies),
    and the standardized MAE of Schütt et al. / DIG over the T targets evaluated,
    ``std_mae_{T}targets_pct`` = 100 * mean_t(MAE_t / std_t). std_t is ``TargetSpec.dataset_std``: the standard
    deviation over the whole dataset of the quantity scored (for extensive energies the atomization energy,
    since the MAE of a total energy is the MAE of its atomization energy); the references' own std when it is
    not set. The papers' value averages all 12 QM9 targets: it is a different metric unless T = 12."""
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
    std = np.array([t.dataset_std if t.dataset_std else references[:, i].std() for i, t in enumerate(targets)])
    if np.all(std > 0):
        out[std_mae_metric(len(targets))] = float(100.0 * np.mean(mae / std))
    return out


def std_mae_metric(num_targets: int) -> str:
    """The name of the standardized MAE over ``num_targets`` targets: ``std_mae_4targets_pct``."""
    return f"std_mae_{num_targets}target{'s' if num_targets != 1 else ''}_pct"


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
