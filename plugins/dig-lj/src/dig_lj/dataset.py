"""LJ13: thermal configurations of the 13-atom argon cluster with exact Lennard-Jones energies and forces.

    E = 4 eps sum_{i<j} [(sigma / r_ij)^12 - (sigma / r_ij)^6],   F_i = -dE/dr_i
    eps = 0.0104 eV, sigma = 3.40 Å (argon; Rahman 1964)

Configurations come from one Metropolis Monte Carlo chain at ``temperature_k`` started at the icosahedral
minimum (centre atom + 12 vertices at 2^(1/6) sigma), one frame kept every ``stride`` sweeps. The chain is cut
into train / valid / test blocks in that order with ``gap`` frames dropped between blocks, so no evaluated
frame is a few steps away from a training frame.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dig.data import load_or_build, save_cached_arrays
from dig.errors import DataError
from dig.tracks.threed import Molecules, TargetSpec

EPSILON_EV = 0.0104
SIGMA_A = 3.40
BOLTZMANN_EV_PER_K = 8.617333262e-5
ARGON = 18
SPLIT_SIZES: dict[str, dict[str, int]] = {
    "smoke": {"train": 64, "valid": 32, "test": 64},
    "default": {"train": 1_000, "valid": 250, "test": 500},
    "paper": {"train": 1_000, "valid": 1_000, "test": 1_000},
}


def lennard_jones(pos: np.ndarray) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å) of one configuration ``pos`` [n, 3] (Å)."""
    diff = pos[:, None, :] - pos[None, :, :]
    r2 = (diff**2).sum(-1)
    np.fill_diagonal(r2, np.inf)
    s6 = (SIGMA_A**2 / r2) ** 3
    energy = 2.0 * EPSILON_EV * float((s6 * s6 - s6).sum())  # each pair counted twice: 4 eps / 2
    magnitude = 24.0 * EPSILON_EV * (2.0 * s6 * s6 - s6) / r2  # -dE/dr / r for each pair
    forces = (magnitude[:, :, None] * diff).sum(1)
    return energy, forces


def icosahedron() -> np.ndarray:
    phi = (1 + 5**0.5) / 2
    vertices = [(0, s1, s2 * phi) for s1 in (-1, 1) for s2 in (-1, 1)]
    vertices = [v[k:] + v[:k] for v in vertices for k in range(3)]
    shell = np.array(vertices, dtype=np.float64)
    shell *= 2 ** (1 / 6) * SIGMA_A / np.linalg.norm(shell[0])
    return np.vstack([np.zeros((1, 3)), shell])


def monte_carlo(frames: int, temperature_k: float, stride: int, seed: int, step_a: float = 0.12) -> dict[str, np.ndarray]:
    """``frames`` configurations of a Metropolis chain (single-atom moves, ``stride`` sweeps between frames)."""
    rng = np.random.RandomState(seed)
    pos = icosahedron()
    energy, _ = lennard_jones(pos)
    beta = 1.0 / (BOLTZMANN_EV_PER_K * temperature_k)
    out_pos, out_energy, out_forces = [], [], []
    for _ in range(frames):
        for _ in range(stride * len(pos)):
            atom = rng.randint(len(pos))
            trial = pos.copy()
            trial[atom] += step_a * rng.uniform(-1, 1, 3)
            trial_energy, _ = lennard_jones(trial)
            if trial_energy <= energy or rng.rand() < np.exp(-beta * (trial_energy - energy)):
                pos, energy = trial, trial_energy
        pos = pos - pos.mean(0)
        energy, forces = lennard_jones(pos)
        out_pos.append(pos.copy())
        out_energy.append(energy)
        out_forces.append(forces)
    return {"z": np.full(len(pos), ARGON, dtype=np.int64), "pos": np.asarray(out_pos, dtype=np.float32),
            "energy": np.asarray(out_energy), "forces": np.asarray(out_forces)}


class LJ13:
    """The dataset object dig's 3D track calls (see dig's docs/plugins.md for the protocol)."""

    target = TargetSpec("energy", "eV", "meV", 1000.0, True, "Lennard-Jones energy of the cluster")
    forces_unit = "eV/A"

    def __init__(self, frames: int = 2_000, temperature_k: float = 30.0, stride: int = 2, gap: int = 20,
                 seed: int = 0) -> None:
        self.name = "lj13"
        self.settings = {"frames": frames, "temperature_k": temperature_k, "stride": stride, "seed": seed}
        self.gap = gap
        self.cache_name = f"lj13-{frames}f-{int(temperature_k)}K-x{stride}-s{seed}-v1"
        self._molecules: Molecules | None = None

    def prepare(self, source: str | os.PathLike | None = None) -> dict[str, Any]:
        """Simulate and cache the frames (``dig data build lj13`` calls this with ``source=None``)."""
        if source is not None:
            raise DataError("lj13 is simulated here, not read from a file; run `dig data build lj13` without --from")
        arrays = monte_carlo(**self.settings)
        manifest = {"dataset": self.name, "source": "Metropolis Monte Carlo, Lennard-Jones argon", **self.settings}
        save_cached_arrays(self.cache_name, arrays, manifest)
        self._molecules = None
        return manifest

    def load(self) -> Molecules:
        if self._molecules is None:
            arrays, _ = load_or_build(self.cache_name, self.prepare)
            frames, atoms = arrays["pos"].shape[:2]
            self._molecules = Molecules(
                z=np.tile(arrays["z"], frames), pos=arrays["pos"].reshape(-1, 3),
                ptr=np.arange(frames + 1, dtype=np.int64) * atoms, y=arrays["energy"].reshape(-1, 1),
                targets=(self.target,), ids=np.arange(frames), forces=arrays["forces"].reshape(-1, 3),
                forces_unit=self.forces_unit,
            )
        return self._molecules

    def split(self, budget: str, num_molecules: int) -> dict[str, np.ndarray]:
        """Consecutive blocks of the chain, ``gap`` frames apart: train, then valid, then test."""
        sizes = SPLIT_SIZES[budget]
        needed = sum(sizes.values()) + 2 * self.gap
        if needed > num_molecules:
            raise DataError(f"lj13 has {num_molecules} frames but the {budget} budget needs {needed}")
        out, start = {}, 0
        for part in ("train", "valid", "test"):
            out[part] = np.arange(start, start + sizes[part])
            start += sizes[part] + self.gap
        return out

    def default_targets(self) -> Sequence[str]:
        return ("energy",)

    def card(self) -> Mapping[str, Any]:
        return {"name": "LJ13 argon cluster", "potential": f"Lennard-Jones, eps {EPSILON_EV} eV, sigma {SIGMA_A} Å",
                "sampling": "Metropolis Monte Carlo from the icosahedral minimum", "units": "eV, eV/Å",
                "split": f"consecutive blocks, {self.gap} frames apart", "split_sizes": SPLIT_SIZES, **self.settings}
