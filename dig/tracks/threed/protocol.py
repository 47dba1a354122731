"""The 3D molecular track's protocol: molecules in, one prediction per molecule and target out.

- A dataset provides ``Molecules`` (atoms of all molecules concatenated) and a fixed split per budget.
- A model is an ``nn.Module`` with ``forward(batch: MoleculeBatch) -> Tensor[B, T]`` in the targets' own
  units (eV for energies), built by a factory ``build(stats: TargetStats, **hparams)``.
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

    name: str
    unit: str
    report_unit: str
    report_scale: float
    extensive: bool
    description: str = ""


@dataclass(frozen=True)
class Molecules:
    """Molecules with atoms concatenated: molecule m owns atoms ``ptr[m]:ptr[m+1]``."""

    z: np.ndarray  # [A] atomic numbers
    pos: np.ndarray  # [A, 3] Angstrom
    ptr: np.ndarray  # [M + 1]
    y: np.ndarray  # [M, T] targets in TargetSpec.unit
    targets: tuple[TargetSpec, ...]
    ids: np.ndarray  # [M] source ids
    atomref: np.ndarray | None = None  # [MAX_ATOMIC_NUMBER + 1, T] isolated-atom values, NaN where unknown
    forces: np.ndarray | None = None  # [A, 3] forces on the atoms, -dE/dpos of the first target
    forces_unit: str = ""

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
    """A batch of molecules. Attribute names follow PyG (``z``, ``pos``, ``batch``, ``ptr``, ``y``) so models
    written for PyG batches run unchanged."""

    z: Tensor  # [A] long
    pos: Tensor  # [A, 3]
    batch: Tensor  # [A] molecule of each atom
    ptr: Tensor  # [B + 1]
    y: Tensor  # [B, T]
    num_graphs: int
    forces: Tensor | None = None  # [A, 3] when the dataset has forces

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
    """A registered 3D dataset: loads its molecules offline and gives fixed split indices per budget."""

    name: str

    def load(self) -> Molecules: ...

    def split(self, budget: str, num_molecules: int) -> dict[str, np.ndarray]: ...

    def default_targets(self) -> Sequence[str]: ...

    def card(self) -> Mapping[str, Any]: ...
