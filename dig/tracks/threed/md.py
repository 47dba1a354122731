"""Molecular-dynamics datasets with energies and forces (MD17-style), read or built offline.

- ``MD17``: the canonical sGDML/MD17 ``.npz`` files (``R`` [M, n, 3] Å, ``z`` [n], ``E`` [M] or [M, 1]
  kcal/mol, ``F`` [M, n, 3] kcal/mol/Å) of Chmiela et al. 2017, prepared once with
  ``dig data prepare md17-aspirin --from md17_aspirin.npz`` (nothing is downloaded).
- ``XTBDynamics``: the same molecules simulated here: RDKit ETKDG + MMFF94 conformers, Langevin dynamics at
  500 K (MD17's temperature) driven by GFN2-xTB (``tblite``), one frame kept every ``stride`` steps after
  equilibration, energies and forces from the same GFN2-xTB calls, in eV and eV/Å. Independent trajectories
  run in parallel (one per core). Built on first use (or ``dig data build xtb-aspirin``) and cached with a
  checksum.

Splits follow DIG's MD17 protocol: a seeded permutation, 1,000 train / 1,000 validation / rest test for the
paper budget, smaller prefixes for the smaller budgets.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dig.data import load_cached_arrays, load_or_build, permuted_split, read_npz, save_cached_arrays
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
SPLIT_SIZES: dict[str, dict[str, int | None]] = {
    "smoke": {"train": 64, "valid": 32, "test": 64},
    "default": {"train": 1_000, "valid": 250, "test": 500},
    "paper": {"train": 1_000, "valid": 1_000, "test": None},
}
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

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """The frames: z [n], pos [M, n, 3], energy [M], forces [M, n, 3]."""

    def load(self) -> Molecules:
        if self._molecules is None:
            arrays = self._arrays()
            self._molecules = _molecules_from_frames(
                arrays["z"], arrays["pos"], arrays["energy"], arrays["forces"], self.target, self.forces_unit
            )
        return self._molecules

    def split(self, budget: str, num_molecules: int) -> dict[str, np.ndarray]:
        sizes = dict(SPLIT_SIZES[budget])
        fixed = sum(v for v in sizes.values() if v is not None)
        if fixed > num_molecules or (sizes["test"] is not None and fixed == num_molecules):
            raise DataError(
                f"{self.name} has {num_molecules} frames but the {budget} budget needs more than {fixed}; "
                "build it with more frames"
            )
        return permuted_split(num_molecules, sizes, SPLIT_SEED)

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

    def card(self) -> Mapping[str, Any]:
        return {"name": f"MD17 {self.molecule}", "reference": "Chmiela et al., Science Advances 3, e1603015 (2017)",
                "units": "kcal/mol, kcal/mol/Å", "split_sizes": SPLIT_SIZES}


class XTBDynamics(_FrameDataset):
    target = TargetSpec("energy", "eV", "meV", 1000.0, True, "GFN2-xTB total energy")
    forces_unit = "eV/A"

    def __init__(self, molecule: str, frames: int = 2_500, temperature_k: float = 500.0, timestep_fs: float = 0.5,
                 stride: int = 10, equilibration_steps: int = 200, seed: int = 0, trajectories: int = 2) -> None:
        super().__init__()
        if molecule not in MD17_MOLECULES:
            raise DataError(f"unknown molecule {molecule!r}; known: {', '.join(MD17_MOLECULES)}")
        self.molecule, self.name = molecule, f"xtb-{molecule}"
        self.settings = {"frames": frames, "temperature_k": temperature_k, "timestep_fs": timestep_fs,
                         "stride": stride, "equilibration_steps": equilibration_steps, "seed": seed}
        self.trajectories = trajectories
        self.cache_name = f"{self.name}-{frames}f-{trajectories}x-{int(temperature_k)}K-s{seed}-v2"

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

    def card(self) -> Mapping[str, Any]:
        return {
            "name": f"{self.molecule} GFN2-xTB dynamics", "level_of_theory": "GFN2-xTB (tblite)",
            "sampling": f"{self.trajectories} independent Langevin MD runs at {self.settings['temperature_k']} K, "
                        f"{self.settings['timestep_fs']} fs steps, every {self.settings['stride']}th step after "
                        f"{self.settings['equilibration_steps']}",
            "start": "RDKit ETKDG conformer relaxed with MMFF94", "units": "eV, eV/Å",
            "smiles": MD17_MOLECULES[self.molecule], "split_sizes": SPLIT_SIZES, "trajectories": self.trajectories,
            **self.settings,
        }


def build_xtb_frames(smiles: str, frames: int, trajectories: int, seed: int, **settings: Any) -> dict[str, np.ndarray]:
    """``frames`` frames from ``trajectories`` independent runs (seeds seed, seed+1, ...; each its own RDKit
    conformer and velocities), simulated in fresh processes, one per core, and concatenated in seed order.

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
    return {"z": runs[0]["z"], **{key: np.concatenate([run[key] for run in runs]) for key in ("pos", "energy", "forces")}}


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
