"""The 3D molecular graphs track. What plugins build on: the protocol types and the output readout."""

from dig.tracks.threed.protocol import (
    MAX_ATOMIC_NUMBER,
    MoleculeBatch,
    MoleculeDataset,
    Molecules,
    TargetSpec,
    TargetStats,
)
from dig.tracks.threed.readout import AtomwiseReadout

__all__ = [
    "MAX_ATOMIC_NUMBER", "AtomwiseReadout", "MoleculeBatch", "MoleculeDataset", "Molecules", "TargetSpec",
    "TargetStats",
]
