"""Registered datasets of the generation track, offline.

- ``qm9-smiles``: the SMILES of all 130,831 QM9 molecules (≤ 9 heavy atoms C, N, O, F) from qm9pack, canonical and
  non-isomeric, split by a permutation with seed 42 into 90 % train, 5 % valid, 5 % test; the test side is
  a reference computed from the test SMILES (ChemNet statistics, fingerprints, fragments, scaffolds; cached).
- ``moses``: MOSES's own train / test / test_scaffolds (Polykovskiy et al. 2020); its SMILES are already
  RDKit-canonical without stereo (checked in the tests). Valid: the last 10,000 of a seed-42 permutation of
  train (MOSES has no validation split); the test side is MOSES's released statistics of test and
  test_scaffolds.
Smaller budgets train on a fixed prefix of the train permutation; novelty is always against the whole train.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from dig.data import load_or_build, save_cached_arrays
from dig.data.qm9pack import read_qm9pack_smiles
from dig.data.smiles import ParseReport, iter_molecules, read_moses_split
from dig.errors import DataError
from dig.tracks.generation.graphs import AtomVocabulary, heavy_atom_tokens
from dig.tracks.generation.metrics import (
    Reference,
    canonical,
    chemnet_statistics,
    fragments,
    morgan_fingerprints,
    scaffolds,
)
from dig.tracks.generation.protocol import SmilesData

SPLIT_SEED = 42
TRAIN_MOLECULES = {"smoke": 2_000, "default": 50_000, "paper": None}  # None: the whole train split
REFERENCE_MOLECULES = {"smoke": 1_000, "default": 10_000, "paper": None}


def _counter_arrays(prefix: str, counts: Counter) -> dict[str, np.ndarray]:
    keys = sorted(counts)
    return {f"{prefix}_keys": np.array(keys, dtype=str), f"{prefix}_counts": np.array([counts[k] for k in keys], dtype=np.int64)}


def _counter(arrays: Mapping[str, np.ndarray], prefix: str) -> Counter:
    return Counter(dict(zip(arrays[f"{prefix}_keys"].tolist(), arrays[f"{prefix}_counts"].tolist(), strict=True)))


def _vocabulary_arrays(smiles: list[str], source: str) -> dict[str, np.ndarray]:
    """Vocabulary and largest heavy-atom count of ``smiles``, parsed one at a time (never all molecules in
    memory: MOSES's 1.6 M would take over 10 GB); an unparseable SMILES is an error naming it."""
    tokens: set[tuple[str, int]] = set()
    largest = 0
    report = ParseReport()
    for mol in iter_molecules(smiles, report):
        if mol is not None:
            tokens.update(heavy_atom_tokens(mol))
            largest = max(largest, mol.GetNumAtoms())
    if report.failed:
        raise DataError(report.message(source))
    ordered = AtomVocabulary.from_tokens(tokens).tokens
    return {"vocab_symbols": np.array([t[0] for t in ordered], dtype=str),
            "vocab_charges": np.array([t[1] for t in ordered], dtype=np.int64), "max_atoms": np.array(largest)}


def _vocabulary(arrays: Mapping[str, np.ndarray]) -> tuple[AtomVocabulary, int]:
    tokens = tuple(zip(arrays["vocab_symbols"].tolist(), arrays["vocab_charges"].tolist(), strict=True))
    return AtomVocabulary(tokens), int(arrays["max_atoms"])


class _LoadedOnce:
    """``load(budget)`` builds a budget's ``SmilesData`` (and its whole-train set) once per process: every job
    config and job asks for it."""

    def load(self, budget: str) -> SmilesData:
        loaded = self.__dict__.setdefault("_loaded", {})
        if budget not in loaded:
            loaded[budget] = self._load(budget)
        return loaded[budget]


class QM9Smiles(_LoadedOnce):
    name = "qm9-smiles"
    cache_name = "generation-qm9-smiles-v1"

    def __init__(self) -> None:
        self._smiles: np.ndarray | None = None

    def prepare(self, source: Any = None) -> dict[str, Any]:
        if source is not None:
            raise DataError("qm9 (generation) is read from the qm9pack package; it takes no --from file")
        ids, raw = read_qm9pack_smiles()
        vocabulary = _vocabulary_arrays(raw, "qm9pack SMILES")
        smiles = [canonical(s) for s in raw]
        manifest = {"dataset": self.name, "molecules": len(smiles), "source": "qm9pack SMILES column"}
        save_cached_arrays(self.cache_name, {"smiles": np.array(smiles, dtype=str), "ids": np.array(ids),
                                             **vocabulary}, manifest)
        return manifest

    def smiles(self) -> np.ndarray:
        if self._smiles is None:
            self._arrays, _ = load_or_build(self.cache_name, self.prepare)
            self._smiles = self._arrays["smiles"]
        return self._smiles

    def _order(self) -> np.ndarray:
        order = np.arange(len(self.smiles()))
        np.random.RandomState(SPLIT_SEED).shuffle(order)
        return order

    def _parts(self) -> dict[str, np.ndarray]:
        order, n = self._order(), len(self.smiles())
        test, valid = int(round(0.05 * n)), int(round(0.05 * n))
        return {"test": order[:test], "valid": order[test:test + valid], "train": order[test + valid:]}

    def _load(self, budget: str) -> SmilesData:
        smiles, parts = self.smiles(), self._parts()
        train_all = smiles[parts["train"]].tolist()
        train = train_all[: TRAIN_MOLECULES[budget]] if TRAIN_MOLECULES[budget] else train_all
        vocabulary, max_atoms = _vocabulary(self._arrays)
        return SmilesData(self.name, train, smiles[parts["valid"]].tolist(), frozenset(train_all), vocabulary, max_atoms)

    def references(self, budget: str) -> list[Reference]:
        size = REFERENCE_MOLECULES[budget]
        name = f"generation-qm9-reference-{size or 'all'}-v1"

        def build() -> None:
            test = self.smiles()[self._parts()["test"]].tolist()[:size]
            mu, sigma = chemnet_statistics(test)
            arrays = {"mu": mu, "sigma": sigma, "fps": morgan_fingerprints(test),
                      **_counter_arrays("frag", fragments(test)), **_counter_arrays("scaf", scaffolds(test))}
            save_cached_arrays(name, arrays, {"dataset": self.name, "reference": "test", "molecules": len(test)})

        arrays, _ = load_or_build(name, build)
        return [Reference("test", arrays["mu"], arrays["sigma"], arrays["fps"], _counter(arrays, "frag"),
                          _counter(arrays, "scaf"))]

    def card(self) -> Mapping[str, Any]:
        return {"name": self.name, "reference": "Ramakrishnan et al. 2014 (QM9), SMILES from qm9pack",
                "split": "seed-42 permutation: 90 / 5 / 5 % train / valid / test"}


class MosesSmiles(_LoadedOnce):
    name = "moses"
    cache_name = "generation-moses-vocabulary-v1"
    VALID = 10_000

    def __init__(self) -> None:
        self._train: list[str] | None = None

    def prepare(self, source: Any = None) -> dict[str, Any]:
        """Parse every training SMILES once (about 1.5 min): unparseable ones are an error naming them; the
        vocabulary and the largest molecule are cached."""
        if source is not None:
            raise DataError("moses is read from the molsets wheel; it takes no --from file")
        train = self._train_split()
        manifest = {"dataset": self.name, "train_molecules": len(train)}
        save_cached_arrays(self.cache_name, _vocabulary_arrays(train, "MOSES train"), manifest)
        return manifest

    def _train_split(self) -> list[str]:
        if self._train is None:
            self._train = read_moses_split("train")
        return self._train

    def _load(self, budget: str) -> SmilesData:
        everything = self._train_split()
        order = np.arange(len(everything))
        np.random.RandomState(SPLIT_SEED).shuffle(order)
        valid = [everything[i] for i in order[-self.VALID:]]
        limit = TRAIN_MOLECULES[budget]
        train = [everything[i] for i in order[: limit if limit else len(order) - self.VALID]]
        vocabulary, max_atoms = _vocabulary(load_or_build(self.cache_name, self.prepare)[0])
        return SmilesData(self.name, train, valid, frozenset(everything), vocabulary, max_atoms)

    def references(self, budget: str) -> list[Reference]:
        return [Reference.from_moses("test"), Reference.from_moses("test_scaffolds")]

    def card(self) -> Mapping[str, Any]:
        return {"name": self.name, "reference": "Polykovskiy et al., MOSES, Front. Pharmacol. 2020",
                "split": "MOSES's train / test / test_scaffolds; valid = 10,000 of train (seed 42)"}
