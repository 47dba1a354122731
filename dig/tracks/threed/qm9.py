"""QM9 (Ramakrishnan et al. 2014): 130,831 small organic molecules with DFT (B3LYP/6-31G(2df,p)) geometries
and 12 properties, read offline.

Sources, in order of preference:
1. a cache prepared with ``dig data prepare qm9 --from qm9_eV.npz`` (DimeNet's canonical file), or
2. the CSV files shipped by the ``qm9pack`` PyPI package, converted once (checksums verified).

Splits follow DimeNet/DIG: a permutation with seed 42, 110,000 train / 10,000 validation / rest test; the
smaller budgets take fixed prefixes of those three blocks.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dig.data import load_or_build, permuted_split, read_npz, save_cached_arrays
from dig.data.qm9pack import NUM_MOLECULES, QM9PACK_SHA256, qm9pack_files, verify_qm9pack_file
from dig.errors import DataError
from dig.tracks.threed.protocol import MAX_ATOMIC_NUMBER, Molecules, TargetSpec
from dig.tracks.threed.validate import check_frames

HARTREE_TO_EV = 27.211386
CACHE_NAME = "qm9-v1"

TARGETS: tuple[TargetSpec, ...] = (
    TargetSpec("mu", "D", "D", 1.0, False, "dipole moment"),
    TargetSpec("alpha", "bohr3", "bohr3", 1.0, True, "isotropic polarizability"),
    TargetSpec("homo", "eV", "meV", 1000.0, False, "HOMO energy"),
    TargetSpec("lumo", "eV", "meV", 1000.0, False, "LUMO energy"),
    TargetSpec("gap", "eV", "meV", 1000.0, False, "HOMO-LUMO gap"),
    TargetSpec("r2", "bohr2", "bohr2", 1.0, True, "electronic spatial extent"),
    TargetSpec("zpve", "eV", "meV", 1000.0, True, "zero point vibrational energy"),
    TargetSpec("U0", "eV", "meV", 1000.0, True, "internal energy at 0 K"),
    TargetSpec("U", "eV", "meV", 1000.0, True, "internal energy at 298.15 K"),
    TargetSpec("H", "eV", "meV", 1000.0, True, "enthalpy at 298.15 K"),
    TargetSpec("G", "eV", "meV", 1000.0, True, "free energy at 298.15 K"),
    TargetSpec("Cv", "calmolK", "calmolK", 1.0, True, "heat capacity at 298.15 K"),
)
TARGET_NAMES = tuple(t.name for t in TARGETS)
DEFAULT_TARGETS = ("U0", "homo", "lumo", "gap")

# qm9pack column -> (target, factor to the TargetSpec unit)
_QM9PACK_COLUMNS = {
    "mu": ("Dipole_debye", 1.0),
    "alpha": ("Polarizability_bohr3", 1.0),
    "homo": ("HOMO_au", HARTREE_TO_EV),
    "lumo": ("LUMO_au", HARTREE_TO_EV),
    "gap": ("HOMO_LUMO_gap_au", HARTREE_TO_EV),
    "r2": ("R2_bohr2", 1.0),
    "zpve": ("ZPVE_au", HARTREE_TO_EV),
    "U0": ("InternalEnergy_0K_au", HARTREE_TO_EV),
    "U": ("InternalEnergy_298K_au", HARTREE_TO_EV),
    "H": ("Enthalphy_298K_au", HARTREE_TO_EV),
    "G": ("GibbsFreeEnergy_298K_au", HARTREE_TO_EV),
    "Cv": ("Heatcapacity_Cv_cal_mol_K", 1.0),
}
ELEMENTS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}

# Energies of the isolated atoms at the same level of theory (QM9's atomref table, Hartree), per element
# H, C, N, O, F; Cv is 2.981 cal/(mol K) for every free atom and ZPVE is zero.
_FREE_ATOM_HARTREE = {
    "U0": (-0.500273, -37.846772, -54.583861, -75.064579, -99.718730),
    "U": (-0.498857, -37.845355, -54.582445, -75.063163, -99.717314),
    "H": (-0.497912, -37.844411, -54.581501, -75.062219, -99.716370),
    "G": (-0.510927, -37.861317, -54.598897, -75.079532, -99.733544),
}


def free_atom_references() -> np.ndarray:
    """[MAX_ATOMIC_NUMBER + 1, 12] isolated-atom values in the targets' units; NaN where none is defined."""
    table = np.full((MAX_ATOMIC_NUMBER + 1, len(TARGETS)), np.nan)
    for column, name in enumerate(TARGET_NAMES):
        for element, z in ELEMENTS.items():
            if name in _FREE_ATOM_HARTREE:
                table[z, column] = _FREE_ATOM_HARTREE[name]["HCNOF".index(element)] * HARTREE_TO_EV
            elif name == "zpve":
                table[z, column] = 0.0
            elif name == "Cv":
                table[z, column] = 2.981
    return table


SPLIT_SIZES: dict[str, dict[str, int | None]] = {
    "smoke": {"train": 256, "valid": 64, "test": 128},
    "default": {"train": 20_000, "valid": 2_000, "test": 5_000},
    "paper": {"train": 110_000, "valid": 10_000, "test": None},
}
SPLIT_SEED = 42


def _floats(text: str) -> np.ndarray:
    return np.array(text.replace("[", "").replace("]", "").split(","), dtype=np.float64)


def read_qm9pack_csv(paths: Sequence[Path], verify: bool = True) -> dict[str, np.ndarray]:
    """Parse qm9pack's CSV files (one molecule per row, geometry as a JSON-like list) into arrays."""
    z_parts, pos_parts, sizes, ids, ys = [], [], [], [], []
    for path in paths:
        if verify:
            verify_qm9pack_file(path)
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            needed = {"Index", "Elements", "XYZ_Ang", "N_atoms", *(c for c, _ in _QM9PACK_COLUMNS.values())}
            missing = needed - set(reader.fieldnames or ())
            if missing:
                raise DataError(f"{path} is not a qm9pack QM9 CSV: columns {sorted(missing)} are missing")
            for line, row in enumerate(reader, start=2):
                symbols = row["Elements"].strip("[]").replace("'", "").replace('"', "").split(",")
                try:
                    numbers = [ELEMENTS[s.strip()] for s in symbols]
                    coords = _floats(row["XYZ_Ang"]).reshape(-1, 3)
                    values = [float(row[col]) * factor for col, factor in _QM9PACK_COLUMNS.values()]
                except (KeyError, ValueError) as exc:
                    raise DataError(f"{path}:{line}: malformed molecule row ({exc})") from exc
                if len(numbers) != len(coords) or len(numbers) != int(row["N_atoms"]):
                    raise DataError(f"{path}:{line}: {len(numbers)} elements but {len(coords)} coordinates")
                z_parts.append(numbers)
                pos_parts.append(coords)
                sizes.append(len(numbers))
                ids.append(int(row["Index"]))
                ys.append(values)
    ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(sizes)
    return {
        "z": np.concatenate([np.asarray(z, dtype=np.int8) for z in z_parts]),
        "pos": np.concatenate(pos_parts).astype(np.float32),
        "ptr": ptr,
        "y": np.asarray(ys, dtype=np.float64),
        "ids": np.asarray(ids, dtype=np.int64),
    }


def read_dimenet_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read DimeNet's canonical ``qm9_eV.npz``: ``R`` [A, 3], ``Z`` [A], ``N`` [M], ``id`` [M] and one array per
    target (``mu``, ``alpha``, ``homo``, ..., ``Cv``) with energies in eV."""
    arrays = read_npz(path, ("R", "Z", "N", *TARGET_NAMES), "DimeNet's qm9_eV.npz", optional=("id",))
    sizes = arrays["N"].astype(np.int64)
    z, pos = arrays["Z"], arrays["R"]
    if pos.ndim != 2 or pos.shape[1] != 3 or len(z) != len(pos) or sizes.sum() != len(z):
        raise DataError(f"{path}: inconsistent shapes R{list(pos.shape)}, Z{list(z.shape)}, sum(N)={int(sizes.sum())}")
    y = np.stack([arrays[name].astype(np.float64) for name in TARGET_NAMES], axis=1)
    if y.shape[0] != len(sizes):
        raise DataError(f"{path}: {y.shape[0]} target rows for {len(sizes)} molecules")
    ids = arrays["id"].astype(np.int64) if "id" in arrays else np.arange(len(sizes))
    ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(sizes)
    check_frames(z, pos, ptr, {"R": pos, **{name: arrays[name] for name in TARGET_NAMES}}, str(path), z_name="Z")
    return {"z": z.astype(np.int8), "pos": pos.astype(np.float32), "ptr": ptr, "y": y, "ids": ids}


class QM9:
    """The QM9 dataset entry of the 3D track."""

    name = "qm9"

    def __init__(self, cache_name: str = CACHE_NAME) -> None:
        self.cache_name = cache_name
        self._molecules: Molecules | None = None

    def prepare(self, source: str | os.PathLike | None = None) -> dict[str, Any]:
        """Build the cache from ``source`` (a DimeNet ``.npz``) or from qm9pack; returns the manifest."""
        if source is not None:
            arrays, origin = read_dimenet_npz(source), {"source": "dimenet-npz", "path": str(source)}
        else:
            arrays, origin = read_qm9pack_csv(qm9pack_files()), {"source": "qm9pack", "sha256": QM9PACK_SHA256}
        manifest = {"dataset": "qm9", "targets": list(TARGET_NAMES), "molecules": int(len(arrays["ptr"]) - 1), **origin}
        save_cached_arrays(self.cache_name, arrays, manifest)
        self._molecules = None
        return manifest

    def load(self) -> Molecules:
        if self._molecules is None:
            arrays, _ = load_or_build(self.cache_name, self.prepare)
            self._molecules = Molecules(
                z=arrays["z"].astype(np.int64), pos=arrays["pos"], ptr=arrays["ptr"], y=arrays["y"],
                targets=TARGETS, ids=arrays["ids"], atomref=free_atom_references(),
            )
        return self._molecules

    def split(self, budget: str, num_molecules: int) -> dict[str, np.ndarray]:
        """DimeNet split of all molecules, then fixed prefixes of each block for the smaller budgets."""
        full = permuted_split(num_molecules, {"train": 110_000, "valid": 10_000, "test": None}, SPLIT_SEED) \
            if num_molecules > 120_000 else permuted_split(num_molecules, _proportional(num_molecules), SPLIT_SEED)
        sizes = SPLIT_SIZES[budget]
        return {part: idx if sizes[part] is None else idx[: sizes[part]] for part, idx in full.items()}

    def default_targets(self) -> Sequence[str]:
        return DEFAULT_TARGETS

    def card(self) -> Mapping[str, Any]:
        return {
            "name": "QM9",
            "reference": "Ramakrishnan et al., Scientific Data 1, 140022 (2014)",
            "level_of_theory": "B3LYP/6-31G(2df,p)",
            "molecules": NUM_MOLECULES,
            "targets": {t.name: f"{t.description} [{t.unit}]" for t in TARGETS},
            "split": "DimeNet/DIG: permutation seed 42, 110,000 / 10,000 / rest; budgets take prefixes",
            "split_sizes": SPLIT_SIZES,
        }


def _proportional(num_molecules: int) -> dict[str, int | None]:
    """Split of a dataset smaller than QM9 (a prepared subset or test fixture) in the 110:10:rest ratio."""
    train = int(round(num_molecules * 110_000 / NUM_MOLECULES))
    valid = int(round(num_molecules * 10_000 / NUM_MOLECULES))
    return {"train": train, "valid": valid, "test": None}
