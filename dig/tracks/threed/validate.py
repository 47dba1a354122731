"""Checks of 3D data, run when a canonical file is prepared, by ``dig data validate NAME``, and before every
bench: each problem names the array, the index and the fix, before any job trains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dig.errors import DataError
from dig.tracks.threed.evaluators import FORCE_UNITS
from dig.tracks.threed.protocol import MAX_ATOMIC_NUMBER, Molecules

SPLIT_KEYS = ("train", "valid", "test")
# Nearest-neighbour distances (Å): ~0.74 (H2) to ~1.9 in molecules, ~3.8 in noble-gas clusters. A median outside
# this range means another length unit (nm: x0.1, pm: x100).
MEDIAN_NEIGHBOUR_RANGE_A = (0.7, 5.0)
MIN_DISTANCE_A = 0.3


def first_non_finite(name: str, array: np.ndarray, source: str) -> str | None:
    values = np.asarray(array)
    if not np.issubdtype(values.dtype, np.number):
        return f"{source}: {name} has dtype {values.dtype}; it must hold numbers"
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        where = index[0] if len(index) == 1 else list(index)
        return (f"{source}: {name}[{where}] = {values[index]} ({len(bad)} non-finite value(s) in {name}); "
                "every value must be a finite number")
    return None


def atomic_number_problem(z: np.ndarray, source: str, name: str = "z") -> str | None:
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.integer):
        return f"{source}: {name} has dtype {z.dtype}; atomic numbers must be integers"
    bad = np.flatnonzero((z < 1) | (z > MAX_ATOMIC_NUMBER))
    if len(bad):
        return (f"{source}: {name}[{int(bad[0])}] = {int(z[bad[0]])} is not an atomic number dig's models embed "
                f"(1..{MAX_ATOMIC_NUMBER}); {len(bad)} such atom(s)")
    return None


def distance_problem(pos: np.ndarray, ptr: np.ndarray, source: str, sample: int = 500) -> str | None:
    """Positions must be in Å: checked on up to ``sample`` evenly spaced molecules."""
    count = len(ptr) - 1
    nearest, closest = [], (np.inf, 0, 0, 0)
    for m in np.unique(np.linspace(0, count - 1, min(sample, count)).astype(int)) if count else []:
        coords = np.asarray(pos[ptr[m] : ptr[m + 1]], dtype=np.float64)
        if len(coords) < 2:
            continue
        d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        nearest.append(d.min(1))
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] < closest[0]:
            closest = (float(d[i, j]), int(m), int(i), int(j))
    if not nearest:
        return None
    if closest[0] < MIN_DISTANCE_A:
        d, m, i, j = closest
        return (f"{source}: atoms {i} and {j} of molecule {m} are {d:.3f} Å apart; positions must be in Å "
                "(a length in nm, or two atoms on top of each other?)")
    median = float(np.median(np.concatenate(nearest)))
    low, high = MEDIAN_NEIGHBOUR_RANGE_A
    if not low <= median <= high:
        unit = "pm (divide by 100)" if median > high else "nm (multiply by 10)"
        return (f"{source}: the median nearest-neighbour distance is {median:.2f}, outside the {low}-{high} Å of "
                f"molecules; positions must be in Å: are they in {unit}?")
    return None


def raise_problems(problems: list[str | None]) -> None:
    found = [p for p in problems if p]
    if found:
        raise DataError("; ".join(found))


def check_frames(z: np.ndarray, pos: np.ndarray, ptr: np.ndarray, arrays: Mapping[str, np.ndarray], source: str,
                 z_name: str = "z") -> None:
    """Prepare-time checks of a canonical file: atomic numbers ``z`` [A], finite values in every array of
    ``arrays`` (named and shaped as in the file, positions included), and positions ``pos`` [A, 3] in Å."""
    raise_problems([
        atomic_number_problem(z, source, z_name),
        *(first_non_finite(name, array, source) for name, array in arrays.items()),
    ])
    raise_problems([distance_problem(pos, ptr, source)])


def molecules_problems(molecules: Any, source: str) -> list[str]:
    if not isinstance(molecules, Molecules):
        return [f"{source}: load() returned {type(molecules).__name__}; it must return dig.tracks.threed.Molecules"]
    atoms, count, width = len(molecules.z), len(molecules), len(molecules.targets)
    problems: list[str | None] = []
    ptr = np.asarray(molecules.ptr)
    if ptr.ndim != 1 or len(ptr) < 2 or ptr[0] != 0 or ptr[-1] != atoms or np.any(np.diff(ptr) < 1):
        return [f"{source}: ptr must rise from 0 to len(z) = {atoms} with at least one atom per molecule "
                f"(got {len(ptr)} entries, first {ptr[:1].tolist()}, last {ptr[-1:].tolist()})"]
    shapes = {"pos": (molecules.pos, (atoms, 3)), "y": (molecules.y, (count, width)), "ids": (molecules.ids, (count,))}
    if molecules.forces is not None:
        shapes["forces"] = (molecules.forces, (atoms, 3))
    for name, (array, shape) in shapes.items():
        if np.shape(array) != shape:
            problems.append(f"{source}: {name} has shape {list(np.shape(array))}, expected {list(shape)}")
    if problems:
        return [p for p in problems if p]
    problems += [atomic_number_problem(molecules.z, source), first_non_finite("pos", molecules.pos, source),
                 first_non_finite("y", molecules.y, source)]
    if molecules.forces is not None:
        problems.append(first_non_finite("forces", molecules.forces, source))
        if molecules.forces_unit not in FORCE_UNITS:
            problems.append(f"{source}: forces_unit {molecules.forces_unit!r} is unknown; use one of "
                            f"{', '.join(map(repr, FORCE_UNITS))}")
    if not any(problems):
        problems.append(distance_problem(molecules.pos, ptr, source))
    return [p for p in problems if p]


def split_problems(split: Any, count: int, source: str) -> list[str]:
    if not isinstance(split, Mapping) or set(split) != set(SPLIT_KEYS):
        keys = sorted(split) if isinstance(split, Mapping) else type(split).__name__
        return [f"{source}: split() must return a dict with keys {list(SPLIT_KEYS)} of index arrays, got {keys}"]
    problems, seen = [], {}
    for part in SPLIT_KEYS:
        idx = np.asarray(split[part])
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or len(idx) == 0:
            problems.append(f"{source}: split['{part}'] must be a non-empty 1-D integer array, got "
                            f"{idx.dtype} with shape {list(idx.shape)}")
            continue
        if idx.min() < 0 or idx.max() >= count:
            problems.append(f"{source}: split['{part}'] holds indices outside [0, {count})")
        seen[part] = set(idx.tolist())
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        if a in seen and b in seen and seen[a] & seen[b]:
            problems.append(f"{source}: {len(seen[a] & seen[b])} molecule(s) are in both split['{a}'] and "
                            f"split['{b}']")
    return problems


def dataset_problems(entry: Any, budget: str) -> list[str]:
    """Everything that would make a registered 3D dataset fail after training, checked up front."""
    source = f"dataset {entry.name!r} (plugin {entry.plugin!r})"
    obj = entry.obj
    missing = [m for m in ("load", "split", "default_targets", "card") if not callable(getattr(obj, m, None))]
    if missing:
        return [f"{source} lacks the methods {missing} of the 3D dataset protocol (see docs/plugins.md)"]
    try:
        molecules = obj.load()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's loader may fail in any way; report it as data
        return [f"{source}: load() raised {type(exc).__name__}: {exc}"]
    problems = molecules_problems(molecules, source)
    if problems:
        return problems
    names = [t.name for t in molecules.targets]
    unknown = [t for t in obj.default_targets() if t not in names]
    if unknown:
        problems.append(f"{source}: default_targets() names {unknown}, which are not among its targets {names}")
    problems += [f"{source}: target {t.name!r} has report_scale {t.report_scale}; it must be positive"
                 for t in molecules.targets if not t.report_scale > 0]
    weight = ((entry.meta.get("train") or {}).get(budget) or {}).get("forces_weight", 0.0)
    if molecules.forces is not None and not weight:
        problems.append(f"{source} has forces but no forces_weight for the {budget!r} budget: register it with "
                        f"train={{'{budget}': {{'forces_weight': 100.0}}}} (else its forces are never trained on)")
    if molecules.forces is None and weight:
        problems.append(f"{source} sets forces_weight={weight} but load() gives no forces")
    try:
        split = obj.split(budget, len(molecules))
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001
        return [*problems, f"{source}: split({budget!r}, {len(molecules)}) raised {type(exc).__name__}: {exc}"]
    problems += split_problems(split, len(molecules), source)
    card = obj.card()
    if not isinstance(card, Mapping) or "name" not in card:
        problems.append(f"{source}: card() must return a mapping with at least a 'name'")
    return problems
