"""The 3D molecular track's protocol: molecules in, one prediction per molecule and target out.

- A dataset provides ``Molecules`` (atoms of all molecules concatenated) and a fixed split per budget.
- A model is an ``nn.Module`` with ``forward(batch: MoleculeBatch) -> Tensor[B, T]`` in the targets' own
  units (eV for energies), built by a factory ``build(stats: TargetStats, **hparams)``. A model fitted
  without gradients (a nearest-neighbour baseline) may define ``fit_training_set(batches)``: it receives the
  training split's batches once, before training.
- An evaluator is a pure function ``evaluate(predictions [n, T], references [n, T], targets) -> dict``
  whose metric names end with their unit (``U0_mae_meV``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from dig.errors import UnknownNameError

MAX_ATOMIC_NUMBER = 100


@dataclass(frozen=True)
class TargetSpec:
    """A regression target. ``unit`` is the unit of the stored values; ``report_unit``/``report_scale``
    convert errors for reporting (eV -> meV: scale 1000). ``extensive`` targets grow with molecule size and
    get per-element reference values and a sum readout."""

    name: str  # e.g. "U0", "homo", "energy"; the --targets name and the metric prefix
    unit: str  # unit of the stored values (eV, D, bohr3, kcalmol, ...)
    report_unit: str  # unit of the reported error, ending the metric name (U0_mae_meV)
    report_scale: float  # stored unit -> report unit (eV -> meV: 1000.0); positive
    extensive: bool  # grows with molecule size: per-element references and a sum readout
    description: str = ""  # one line for tables and cards
    dataset_std: float | None = None  # std over the dataset of the scored quantity (set by the track per job)


@dataclass(frozen=True)
class Molecules:
    """Molecules with atoms concatenated: molecule m owns atoms ``ptr[m]:ptr[m+1]``. Forces datasets store
    each frame of a trajectory as one molecule; ``forces_unit`` is ``"eV/A"`` or ``"kcal/mol/A"``."""

    z: np.ndarray  # [A] integer atomic numbers, 1..MAX_ATOMIC_NUMBER (100)
    pos: np.ndarray  # [A, 3] float positions in Å
    ptr: np.ndarray  # [M + 1] int64 atom offsets, ptr[0] = 0, ptr[-1] = A, at least one atom per molecule
    y: np.ndarray  # [M, T] float targets in TargetSpec.unit, finite
    targets: tuple[TargetSpec, ...]  # T target specs, in the column order of y
    ids: np.ndarray  # [M] int ids of the molecules in their source
    atomref: np.ndarray | None = None  # [MAX_ATOMIC_NUMBER + 1, T] isolated-atom values, NaN where unknown
    forces: np.ndarray | None = None  # [A, 3] forces on the atoms, -dE/dpos of the first target
    forces_unit: str = ""  # "eV/A" or "kcal/mol/A" when forces are given

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def target_index(self, names: Sequence[str]) -> list[int]:
        known = [t.name for t in self.targets]
        missing = [n for n in names if n not in known]
        if missing:
            raise UnknownNameError(f"unknown target(s) {missing}; this dataset has {', '.join(known)}")
        return [known.index(n) for n in names]


@dataclass
class MoleculeBatch:
    """A batch of molecules, what a model's ``forward`` receives. Attribute names follow PyG (``z``, ``pos``,
    ``batch``, ``ptr``, ``y``) so models written for PyG batches run unchanged. ``pos`` is float32 in Å; on
    forces datasets it requires grad and the model's output must be twice differentiable in it (training
    differentiates F = -dE/dpos once more): use smooth activations (SiLU) and smooth cutoffs."""

    z: Tensor  # [A] int64 atomic numbers
    pos: Tensor  # [A, 3] float32 positions in Å
    batch: Tensor  # [A] int64 molecule of each atom (0..B-1)
    ptr: Tensor  # [B + 1] int64 atom offsets: molecule b owns atoms ptr[b]:ptr[b+1]
    y: Tensor  # [B, T] float32 reference targets in their TargetSpec.unit (what the model predicts)
    num_graphs: int  # B, molecules in the batch
    forces: Tensor | None = None  # [A, 3] float32 reference forces in the dataset's forces_unit, when it has forces

    def to(self, device: torch.device | str) -> MoleculeBatch:
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()}
        return MoleculeBatch(**moved)


@dataclass(frozen=True)
class TargetStats:
    """Training-set statistics a model may use to put its outputs in the targets' scale.

    For target t: ``y ~ sum_atoms atomref[z, t] + readout_t(mean[t] + std[t] * o_atom)`` with readout sum for
    extensive targets and mean for intensive ones (the usual SchNet/DimeNet output scaling).
    ``y_mean``/``y_std`` are the plain per-molecule statistics (the mean baseline predicts ``y_mean``).
    """

    targets: tuple[TargetSpec, ...]
    mean: Tensor  # [T] per-atom (extensive) or per-molecule (intensive) offset of the residual
    std: Tensor  # [T] scale of the same
    atomref: Tensor  # [MAX_ATOMIC_NUMBER + 1, T], zero rows for intensive targets
    y_mean: Tensor  # [T]
    y_std: Tensor  # [T]

    @property
    def extensive(self) -> Tensor:
        return torch.tensor([t.extensive for t in self.targets])


@runtime_checkable
class MoleculeModel(Protocol):
    def __call__(self, batch: MoleculeBatch) -> Tensor: ...


ModelFactory = Callable[..., nn.Module]
Evaluator = Callable[[np.ndarray, np.ndarray, Sequence[TargetSpec]], Mapping[str, float]]


@runtime_checkable
class MoleculeDataset(Protocol):
    """A registered 3D dataset: loads its molecules offline and gives fixed split indices per budget.

    Optional: ``prepare(source: str | PathLike | None) -> dict``, which builds the cache and returns its
    manifest. ``dig data prepare NAME --from FILE`` calls it with the file; ``dig data build NAME`` (and a
    dataset simulated on first use) with ``None``. Before every bench, and with ``dig data validate NAME``,
    dig checks what these methods return (shapes, dtypes, finite values, Å positions, split keys and
    overlaps, ``forces_unit``, ``forces_weight``)."""

    name: str

    def load(self) -> Molecules:
        """All molecules, from the cache (built offline on first use); called often, so cache the result."""
        ...

    def split(self, budget: str, num_molecules: int) -> dict[str, np.ndarray]:
        """``{"train": idx, "valid": idx, "test": idx}``: disjoint, non-empty int arrays of molecule indices,
        fixed for a budget (the same every call; smaller budgets take prefixes of larger ones by convention).
        Correlated frames (MD) must not straddle splits: cut the trajectory into blocks."""
        ...

    def default_targets(self) -> Sequence[str]:
        """Names of the targets trained when the user gives no ``--targets`` (a subset of ``Molecules.targets``)."""
        ...

    def card(self) -> Mapping[str, Any]:
        """What the data is: at least ``name``; by convention also ``reference``, ``units``, ``split_sizes``
        and how it was made (level of theory, sampling)."""
        ...
