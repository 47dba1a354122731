"""Molecular-dynamics datasets with energies and forces (MD17-style), read or built offline.

- ``MD17``: the canonical sGDML/MD17 ``.npz`` files (``R`` [M, n, 3] Å, ``z`` [n], ``E`` [M] or [M, 1]
  kcal/mol, ``F`` [M, n, 3] kcal/mol/Å) of Chmiela et al. 2017, prepared once with
  ``dig data prepare md17-aspirin --from md17_aspirin.npz`` (nothing is downloaded).
- ``XTBDynamics``: the same molecules simulated here: RDKit ETKDG + MMFF94 conformers, Langevin dynamics at
  500 K (MD17's temperature) driven by GFN2-xTB (``tblite``), one frame kept every ``stride`` steps after
  equilibration, energies and forces from the same GFN2-xTB calls, in eV and eV/Å. Independent trajectories
  run in parallel (one per core). Built on first use (or ``dig data build xtb-aspirin``) and cached with a
  checksum.

Splits never put frames a few femtoseconds apart on both sides (the energy autocorrelation of these 500 K
trajectories only falls to about zero after ~250 fs): ``XTBDynamics`` trains on whole trajectories and
validates and tests on other, independent trajectories; ``MD17`` (one trajectory per file) cuts the file
into time blocks (train, valid, test) with 250 fs dropped between them. Budgets take evenly spaced frames of
each part. Only ``MD17``'s paper budget keeps the published protocol (a random 1,000 / 1,000 / rest
permutation of the frames, in which most test frames have a training frame 0.5 fs away), because that is
what the published numbers mean.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dig.data import (
    evenly_spaced,
    load_cached_arrays,
    load_or_build,
    permuted_split,
    read_npz,
    save_cached_arrays,
    time_blocks,
)
from dig.errors import DataError
from dig.tracks.threed.protocol import Molecules, TargetSpec
from dig.tracks.threed.validate import check_frames

HARTREE_TO_EV = 27.211386
BOHR_TO_ANGSTROM = 0.52917721067

MD17_MOLECULES = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "benzene": "c1ccccc1",
    "ethanol": "CCO",
    "malonaldehyde": "O=CCC=O",
    "naphthalene": "c1ccc2ccccc2c1",
    "salicylic_acid": "O=C(O)c1ccccc1O",
    "toluene": "Cc1ccccc1",
    "uracil": "O=c1cc[nH]c(=O)[nH]1",
}
SPLIT_SIZES: dict[str, dict[str, int | None]] = {  # frames per part; None: every frame of the part
    "smoke": {"train": 64, "valid": 32, "test": 64},
    "default": {"train": 1_000, "valid": 250, "test": 500},
    "paper": {"train": None, "valid": None, "test": None},
}
MD17_PAPER_SPLIT: dict[str, int | None] = {"train": 1_000, "valid": 1_000, "test": None}
MD17_TIMESTEP_FS = 0.5  # the sampling interval of the MD17 trajectories (Chmiela et al. 2017)
DECORRELATION_FS = 250.0  # the gap kept between a training frame and any evaluated frame
BLOCK_FRACTIONS = {"train": 0.6, "valid": 0.15, "test": 0.25}
SPLIT_SEED = 42


def _molecules_from_frames(z: np.ndarray, pos: np.ndarray, energy: np.ndarray, forces: np.ndarray,
                           target: TargetSpec, forces_unit: str) -> Molecules:
    frames, atoms = pos.shape[:2]
    ptr = np.arange(frames + 1, dtype=np.int64) * atoms
    return Molecules(
        z=np.tile(z.astype(np.int64), frames), pos=pos.reshape(-1, 3).astype(np.float32), ptr=ptr,
        y=energy.reshape(frames, 1).astype(np.float64), targets=(target,), ids=np.arange(frames),
        forces=forces.reshape(-1, 3).astype(np.float64), forces_unit=forces_unit,
    )


def read_md17_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a canonical MD17 file; checks shapes and that every frame has the same atoms."""
    arrays = read_npz(path, ("R", "z", "E", "F"), "an MD17 .npz file (e.g. md17_aspirin.npz)")
    pos, z, energy, forces = arrays["R"], arrays["z"], arrays["E"], arrays["F"]
    if pos.ndim != 3 or pos.shape[2] != 3 or pos.shape[1] != len(z) or forces.shape != pos.shape:
        raise DataError(f"{path}: inconsistent shapes R{list(pos.shape)}, z{list(z.shape)}, F{list(forces.shape)}")
    if energy.reshape(-1).shape[0] != pos.shape[0]:
        raise DataError(f"{path}: {energy.size} energies for {pos.shape[0]} frames")
    frames, atoms = pos.shape[:2]
    check_frames(z, pos.reshape(-1, 3), np.arange(frames + 1) * atoms, {"R": pos, "E": energy, "F": forces}, str(path))
    return {"z": z.astype(np.int64), "pos": pos.astype(np.float32), "energy": energy.reshape(-1).astype(np.float64),
            "forces": forces.astype(np.float64)}


class _FrameDataset(ABC):
    """Shared split and loading of single-molecule trajectory datasets."""

    name = ""
    target: TargetSpec
    forces_unit = ""

    def __init__(self) -> None:
        self._molecules: Molecules | None = None
        self._trajectory: np.ndarray | None = None  # [M] the run of each frame, when the source has several

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """The frames: z [n], pos [M, n, 3], energy [M], forces [M, n, 3]."""

    def load(self) -> Molecules:
        if self._molecules is None:
            arrays = self._arrays()
            self._trajectory = arrays.get("trajectory")
            self._molecules = _molecules_from_frames(
                arrays["z"], arrays["pos"], arrays["energy"], arrays["forces"], self.target, self.forces_unit
            )
        return self._molecules

    @abstractmethod
    def parts(self, num_frames: int) -> dict[str, np.ndarray]:
        """Every frame each part may use, in time order: ``{"train": idx, "valid": idx, "test": idx}``."""

    def split(self, budget: str, num_molecules: int) -> dict[str, np.ndarray]:
        """Evenly spaced frames of each part (``parts``), as many as the budget's ``SPLIT_SIZES``."""
        parts = self.parts(num_molecules)
        out = {}
        for part, size in SPLIT_SIZES[budget].items():
            if size is not None and size > len(parts[part]):
                raise DataError(
                    f"{self.name}: the {budget} budget needs {size} {part} frames but the {part} part has "
                    f"{len(parts[part])} ({self.split_rule()}); build it with more frames"
                )
            out[part] = evenly_spaced(parts[part], size)
        return out

    @abstractmethod
    def split_rule(self) -> str:
        """One line saying how frames are assigned to parts (for messages and the dataset card)."""

    def default_targets(self) -> Sequence[str]:
        return (self.target.name,)


class MD17(_FrameDataset):
    target = TargetSpec("energy", "kcalmol", "kcalmol", 1.0, True, "total energy (CCSD(T) or DFT, per file)")
    forces_unit = "kcal/mol/A"

    def __init__(self, molecule: str) -> None:
        super().__init__()
        self.molecule, self.name = molecule, f"md17-{molecule}"
        self.cache_name = f"{self.name}-v1"

    def prepare(self, source: str | os.PathLike | None = None) -> dict[str, Any]:
        if source is None:
            raise DataError(f"{self.name} is read from its canonical file: dig data prepare {self.name} --from FILE.npz")
        arrays = read_md17_npz(source)
        manifest = {"dataset": self.name, "source": "md17-npz", "path": str(source), "frames": int(len(arrays["pos"]))}
        save_cached_arrays(self.cache_name, arrays, manifest)
        self._molecules = None
        return manifest

    def _arrays(self) -> dict[str, np.ndarray]:
        cached = load_cached_arrays(self.cache_name)
        if cached is None:
            raise DataError(
                f"{self.name} is not prepared; MD17 is not shipped with any package: run "
                f"`dig data prepare {self.name} --from md17_{self.molecule}.npz`"
            )
        return cached[0]

    def parts(self, num_frames: int) -> dict[str, np.ndarray]:
        gap = int(round(DECORRELATION_FS / MD17_TIMESTEP_FS))
        try:
            return time_blocks(num_frames, BLOCK_FRACTIONS, gap)
        except ValueError as exc:
            raise DataError(f"{self.name}: {exc}; the file is too short to split without leaking") from exc

    def split(self, budget: str, num_molecules: int) -> dict[str, np.ndarray]:
        if budget == "paper":  # the published protocol, leaks included (see the module docstring)
            return permuted_split(num_molecules, MD17_PAPER_SPLIT, SPLIT_SEED)
        return super().split(budget, num_molecules)

    def split_rule(self) -> str:
        return (f"time blocks {', '.join(f'{k} {v:.0%}' for k, v in BLOCK_FRACTIONS.items())} of the file, "
                f"{DECORRELATION_FS:g} fs apart; paper budget: the published random {MD17_PAPER_SPLIT['train']} / "
                f"{MD17_PAPER_SPLIT['valid']} / rest")

    def card(self) -> Mapping[str, Any]:
        return {"name": f"MD17 {self.molecule}", "reference": "Chmiela et al., Science Advances 3, e1603015 (2017)",
                "units": "kcal/mol, kcal/mol/Å", "split": self.split_rule(), "split_sizes": SPLIT_SIZES}


class XTBDynamics(_FrameDataset):
    target = TargetSpec("energy", "eV", "meV", 1000.0, True, "GFN2-xTB total energy")
    forces_unit = "eV/A"

    def __init__(self, molecule: str, frames: int = 2_000, temperature_k: float = 500.0, timestep_fs: float = 0.5,
                 stride: int = 20, equilibration_steps: int = 200, seed: int = 0, trajectories: int = 4) -> None:
        super().__init__()
        if molecule not in MD17_MOLECULES:
            raise DataError(f"unknown molecule {molecule!r}; known: {', '.join(MD17_MOLECULES)}")
        self.molecule, self.name = molecule, f"xtb-{molecule}"
        self.settings = {"frames": frames, "temperature_k": temperature_k, "timestep_fs": timestep_fs,
                         "stride": stride, "equilibration_steps": equilibration_steps, "seed": seed}
        self.trajectories = trajectories
        self.cache_name = f"{self.name}-{frames}f-{trajectories}x-{stride}st-{int(temperature_k)}K-s{seed}-v3"

    def prepare(self, source: str | os.PathLike | None = None) -> dict[str, Any]:
        if source is not None:
            raise DataError(f"{self.name} is simulated here, not read from a file; run without --from")
        arrays = build_xtb_frames(MD17_MOLECULES[self.molecule], trajectories=self.trajectories, **self.settings)
        manifest = {"dataset": self.name, "source": "GFN2-xTB Langevin MD (tblite)", "trajectories": self.trajectories,
                    **self.settings}
        save_cached_arrays(self.cache_name, arrays, manifest)
        self._molecules = None
        return manifest

    def _arrays(self) -> dict[str, np.ndarray]:
        return load_or_build(self.cache_name, self.prepare)[0]

    def parts(self, num_frames: int) -> dict[str, np.ndarray]:
        """Whole trajectories: the last one is the test part, the one before it the validation part, the rest
        train (independent runs, so no evaluated frame is correlated with a training frame). With fewer than
        three trajectories: time blocks 250 fs apart."""
        self.load()
        trajectory = self._trajectory
        runs = [] if trajectory is None else list(dict.fromkeys(trajectory.tolist()))
        if len(runs) >= 3:
            return {"train": np.flatnonzero(np.isin(trajectory, runs[:-2])),
                    "valid": np.flatnonzero(trajectory == runs[-2]), "test": np.flatnonzero(trajectory == runs[-1])}
        frame_fs = self.settings["timestep_fs"] * self.settings["stride"]
        try:
            return time_blocks(num_frames, BLOCK_FRACTIONS, int(np.ceil(DECORRELATION_FS / frame_fs)))
        except ValueError as exc:
            raise DataError(f"{self.name}: {exc}; build it with more frames") from exc

    def split_rule(self) -> str:
        if self.trajectories >= 3:
            return (f"by trajectory: {self.trajectories - 2} training runs, one validation run, one test run, "
                    f"each started from its own conformer and velocities")
        return f"time blocks {DECORRELATION_FS:g} fs apart"

    def card(self) -> Mapping[str, Any]:
        return {
            "name": f"{self.molecule} GFN2-xTB dynamics", "split": self.split_rule(), "level_of_theory": "GFN2-xTB (tblite)",
            "sampling": f"{self.trajectories} independent Langevin MD runs at {self.settings['temperature_k']} K, "
                        f"{self.settings['timestep_fs']} fs steps, every {self.settings['stride']}th step after "
                        f"{self.settings['equilibration_steps']}",
            "start": "RDKit ETKDG conformer relaxed with MMFF94", "units": "eV, eV/Å",
            "smiles": MD17_MOLECULES[self.molecule], "split_sizes": SPLIT_SIZES, "trajectories": self.trajectories,
            **self.settings,
        }


def build_xtb_frames(smiles: str, frames: int, trajectories: int, seed: int, **settings: Any) -> dict[str, np.ndarray]:
    """``frames`` frames from ``trajectories`` independent runs (seeds seed, seed+1, ...; each its own RDKit
    conformer and velocities), simulated in fresh processes, one per core, and concatenated in seed order;
    ``trajectory`` [frames] holds each frame's run.

    The processes start with OMP_NUM_THREADS=1: tblite's OpenMP reads it once, when the runtime first loads,
    and in a process that has imported torch that has already happened (measured: GFN2-xTB on 2 threads per
    process ran several times slower than on 1 for these molecules)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    counts = [frames // trajectories + (k < frames % trajectories) for k in range(trajectories)]
    calls = [dict(smiles=smiles, frames=count, seed=seed + k, **settings) for k, count in enumerate(counts)]
    previous = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the spawned processes
    try:
        with ProcessPoolExecutor(min(trajectories, os.cpu_count() or 1), mp_context=get_context("spawn")) as pool:
            runs = list(pool.map(_simulate_kwargs, calls))
    finally:
        if previous is None:
            os.environ.pop("OMP_NUM_THREADS")
        else:
            os.environ["OMP_NUM_THREADS"] = previous
    trajectory = np.repeat(np.arange(trajectories), counts)
    return {"z": runs[0]["z"], "trajectory": trajectory,
            **{key: np.concatenate([run[key] for run in runs]) for key in ("pos", "energy", "forces")}}


def _simulate_kwargs(kwargs: dict[str, Any]) -> dict[str, np.ndarray]:
    return simulate_xtb_dynamics(**kwargs)


def simulate_xtb_dynamics(smiles: str, frames: int, temperature_k: float, timestep_fs: float, stride: int,
                          equilibration_steps: int, seed: int) -> dict[str, np.ndarray]:
    """Langevin dynamics on the GFN2-xTB surface; returns frames with energies (eV) and forces (eV/Å)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # effective only if no OpenMP runtime is loaded yet; see build_xtb_frames
    try:
        from ase import Atoms, units
        from ase.constraints import FixCom
        from ase.md.langevin import Langevin
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
        from rdkit import Chem
        from rdkit.Chem import AllChem
        from tblite.ase import TBLite
    except ImportError as exc:
        raise DataError(
            f"building xTB dynamics needs rdkit, ase and tblite, which dig-bench depends on, but {exc.name!r} is "
            f"not importable here ({exc}): reinstall dig in this environment (pip install -c constraints/cpu.txt "
            f"-e .) or pip install {exc.name}"
        ) from exc
    molecule = Chem.AddHs(Chem.MolFromSmiles(smiles))
    if AllChem.EmbedMolecule(molecule, randomSeed=seed) != 0:
        raise DataError(f"RDKit could not embed {smiles!r}")
    AllChem.MMFFOptimizeMolecule(molecule)
    z = np.array([atom.GetAtomicNum() for atom in molecule.GetAtoms()])
    atoms = Atoms(numbers=z, positions=molecule.GetConformer().GetPositions())
    atoms.set_constraint(FixCom())
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    rng = np.random.RandomState(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_k, rng=rng)
    dynamics = Langevin(
        atoms, timestep_fs * units.fs, temperature_K=temperature_k, friction=0.01 / units.fs, fixcm=False, rng=rng
    )
    dynamics.run(equilibration_steps)
    pos, energy, forces = [], [], []
    for _ in range(frames):
        dynamics.run(stride)
        pos.append(atoms.get_positions().copy())
        energy.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces(apply_constraint=False).copy())  # -dE/dpos, not the COM-constrained ones
    return {"z": z.astype(np.int64), "pos": np.asarray(pos, dtype=np.float32), "energy": np.asarray(energy),
            "forces": np.asarray(forces)}
