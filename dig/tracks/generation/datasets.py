"""Registered datasets of the generation track, offline.

- ``qm9-smiles``: the SMILES of all 130,831 QM9 molecules (≤ 9 heavy atoms C, N, O, F) from qm9pack, canonical and
  non-isomeric, split by a permutation with seed 42 into 90 % train, 5 % valid, 5 % test; the test side is
  a reference computed from the test SMILES (ChemNet statistics, fingerprints, fragments, scaffolds; cached).
- ``moses``: MOSES's own train / test / test_scaffolds (Polykovskiy et al. 2020); its SMILES are already
  RDKit-canonical without stereo (checked in the tests). Valid: the last 10,000 of a seed-42 permutation of
  train (MOSES has no validation split); the test side is MOSES's released statistics of test and
  test_scaffolds.
- ``moses-250k-props``: the property set of property and constrained optimisation: a fixed sample of 250,000
  molecules of MOSES train (seed 2021), with logP, QED, SA, the ring penalty and penalized logP computed here once
  (``properties.py``, about 9 min on 2 cores) and cached. Named for what it is: it is not ZINC250k. Split like
  ``qm9-smiles`` (seed-42 permutation, 90 / 5 / 5 %); its test side is MOSES's test statistics.
- ``zinc250k``: ZINC250k's canonical ``250k_rndm_zinc_drugs_clean_3.csv`` (not shipped offline), prepared from the
  file with ``dig data prepare zinc250k --from FILE``; the same properties are computed here (the file's own
  logP / qed / SAS columns are kept beside them), split like ``qm9-smiles``, test side from its test part.
Smaller budgets train on a fixed prefix of the train permutation; novelty is always against the whole train.
Caches are npz archives with a checksummed manifest, like every dig dataset (not HF ``datasets``: the corpora
are at most 1.6 M short strings, read in about a second, and one cache format serves every track).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from dig.data import load_or_build, save_cached_arrays
from dig.data.qm9pack import read_qm9pack_smiles
from dig.data.smiles import ParseReport, iter_molecules, read_moses_split, read_zinc250k_csv
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
from dig.tracks.generation.properties import PROPERTY_NAMES, property_table
from dig.tracks.generation.protocol import SmilesData

SPLIT_SEED = 42
TRAIN_MOLECULES = {"smoke": 2_000, "default": 50_000, "paper": None}  # None: the whole train split
REFERENCE_MOLECULES = {"smoke": 1_000, "default": 10_000, "paper": None}
OPTIMISATION_STARTS = {"smoke": 20, "default": 800, "paper": 800}
PROPERTY_CHUNK = 2_000


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


def computed_properties(smiles: list[str], workers: int | None = None) -> dict[str, np.ndarray]:
    """``property_table`` of ``smiles`` in chunks over ``workers`` processes (all usable cores by default);
    the same numbers in any number of processes."""
    chunks = [smiles[i : i + PROPERTY_CHUNK] for i in range(0, len(smiles), PROPERTY_CHUNK)]
    workers = min(workers or len(os.sched_getaffinity(0)), len(chunks)) if chunks else 1
    if workers <= 1:
        tables = [property_table(chunk) for chunk in chunks]
    else:  # spawned, not forked: the caller may hold torch's threads
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            tables = list(pool.map(property_table, chunks))
    return {name: np.concatenate([t[name] for t in tables]) if tables else np.zeros(0) for name in PROPERTY_NAMES}


class _PermutationSplit(_LoadedOnce):
    """A cached SMILES corpus (``cache_name``, built by ``prepare``) split by a seed-42 permutation into 90 / 5 /
    5 % train / valid / test; the test side is a reference computed from the test SMILES (cached)."""

    name: str
    cache_name: str
    reference_cache: str

    def arrays(self) -> Mapping[str, np.ndarray]:
        if "_arrays" not in self.__dict__:
            self._arrays, _ = load_or_build(self.cache_name, self.prepare)
        return self._arrays

    def smiles(self) -> np.ndarray:
        return self.arrays()["smiles"]

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
        vocabulary, max_atoms = _vocabulary(self.arrays())
        return SmilesData(self.name, train, smiles[parts["valid"]].tolist(), frozenset(train_all), vocabulary, max_atoms)

    def references(self, budget: str) -> list[Reference]:
        size = REFERENCE_MOLECULES[budget]
        name = f"{self.reference_cache}-{size or 'all'}-v1"

        def build() -> None:
            test = self.smiles()[self._parts()["test"]].tolist()[:size]
            mu, sigma = chemnet_statistics(test)
            arrays = {"mu": mu, "sigma": sigma, "fps": morgan_fingerprints(test),
                      **_counter_arrays("frag", fragments(test)), **_counter_arrays("scaf", scaffolds(test))}
            save_cached_arrays(name, arrays, {"dataset": self.name, "reference": "test", "molecules": len(test)})

        arrays, _ = load_or_build(name, build)
        return [Reference("test", arrays["mu"], arrays["sigma"], arrays["fps"], _counter(arrays, "frag"),
                          _counter(arrays, "scaf"))]


class _PropertySet:
    """A corpus whose cache also holds ``PROPERTY_NAMES`` per molecule (``properties.py``)."""

    def properties(self) -> dict[str, np.ndarray]:
        arrays = self.arrays()
        return {name: arrays[name] for name in PROPERTY_NAMES}

    def lowest_plogp(self, count: int = 800) -> list[str]:
        """The starting molecules of constrained optimisation (Jin et al. 2018): the ``count`` molecules of lowest
        penalized logP (logP − SA − ring penalty; ties by corpus order)."""
        order = np.argsort(self.arrays()["plogp"], kind="stable")[:count]
        return self.smiles()[order].tolist()

    def train_values(self, budget: str, name: str) -> np.ndarray:
        """Property ``name`` of each molecule of ``load(budget).train``, in that order."""
        index = self._parts()["train"]
        limit = TRAIN_MOLECULES[budget]
        return self.arrays()[name][index[:limit] if limit else index]

    def _save(self, raw: list[str], extra: dict[str, np.ndarray], manifest: dict[str, Any]) -> dict[str, Any]:
        vocabulary = _vocabulary_arrays(raw, self.name)
        smiles = [canonical(s) for s in raw]
        manifest = {"dataset": self.name, "molecules": len(smiles), "properties": list(PROPERTY_NAMES), **manifest}
        save_cached_arrays(self.cache_name, {"smiles": np.array(smiles, dtype=str), **computed_properties(smiles),
                                             **extra, **vocabulary}, manifest)
        return manifest


class _CorpusTask:
    """A task over a property set: its data are the set's, and it has no test references."""

    corpus: _PropertySet

    def prepare(self, source: Any = None) -> dict[str, Any]:
        return self.corpus.prepare(source)

    def load(self, budget: str) -> SmilesData:
        return self.corpus.load(budget)

    def references(self, budget: str) -> list[Reference]:
        return []


class OptimisationTask(_CorpusTask):
    """An optimisation task over a property set (``task``: ``"property"`` or ``"constrained"``; ``target``: the
    property optimised). The generator trains goal-directed on the training molecules and their ``target``
    values, then optimises from ``starts(budget)``: the first training molecules for property optimisation
    (DIG starts GraphEBM's dynamics from the training data), the molecules of lowest penalized logP in the
    whole set for constrained optimisation (JT-VAE's 800)."""

    def __init__(self, corpus: _PropertySet, task: str, target: str) -> None:
        if task not in ("property", "constrained") or target not in PROPERTY_NAMES:
            raise ValueError(f"unknown optimisation task {task!r} of {target!r}")
        self.corpus, self.task, self.target = corpus, task, target

    def train_values(self, budget: str) -> np.ndarray:
        return self.corpus.train_values(budget, self.target)

    def starts(self, budget: str) -> list[str]:
        count = OPTIMISATION_STARTS[budget]
        if self.task == "constrained":
            return self.corpus.lowest_plogp(count)
        return self.load(budget).train[:count]

    def card(self) -> Mapping[str, Any]:
        what = ("top-3 " + self.target if self.task == "property" else
                "constrained optimisation of penalized logP from the 800 lowest, at similarity 0 / 0.2 / 0.4 / 0.6")
        return {**self.corpus.card(), "task": what}


class CompositionTask(_CorpusTask):
    """Multi-objective generation by composition (GraphEBM's section 3.4, Liu et al. 2021): a model trains one
    goal-directed generator per property of ``targets`` on the training molecules and their values, composes
    them (for energies, E = E_1 + E_2) and samples; the samples of each single generator are drawn beside the
    composed ones, so the job shows what composing adds. ``thresholds(budget)``: each property's median over
    the training molecules, which a sampled molecule must reach on every property to count as meeting both."""

    task = "composition"

    def __init__(self, corpus: _PropertySet, targets: tuple[str, ...] = ("qed", "plogp")) -> None:
        if len(targets) < 2 or any(target not in PROPERTY_NAMES for target in targets):
            raise ValueError(f"a composition task needs two or more of {PROPERTY_NAMES}, got {targets}")
        self.corpus, self.targets = corpus, targets

    def train_values(self, budget: str) -> dict[str, np.ndarray]:
        return {target: self.corpus.train_values(budget, target) for target in self.targets}

    def thresholds(self, budget: str) -> dict[str, float]:
        return {target: float(np.nanmedian(values)) for target, values in self.train_values(budget).items()}

    def card(self) -> Mapping[str, Any]:
        return {**self.corpus.card(), "task": "composition of " + " and ".join(self.targets) + " generators"}


class QM9Smiles(_PermutationSplit):
    name = "qm9-smiles"
    cache_name = "generation-qm9-smiles-v1"
    reference_cache = "generation-qm9-reference"

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

    def card(self) -> Mapping[str, Any]:
        return {"name": self.name, "reference": "Ramakrishnan et al. 2014 (QM9), SMILES from qm9pack",
                "split": "seed-42 permutation: 90 / 5 / 5 % train / valid / test"}


class MosesPropertySet(_PropertySet, _PermutationSplit):
    name = "moses-250k-props"
    cache_name = "generation-moses-250k-props-v1"
    reference_cache = "generation-moses-250k-props-reference"
    SIZE = 250_000
    SAMPLE_SEED = 2021

    def prepare(self, source: Any = None) -> dict[str, Any]:
        """Sample, canonicalise, and compute the properties of 250,000 MOSES training molecules (about 9 min on
        2 cores, once)."""
        if source is not None:
            raise DataError(f"{self.name} is a sample of MOSES train from the molsets wheel; it takes no --from file")
        train = read_moses_split("train")
        picked = np.sort(np.random.RandomState(self.SAMPLE_SEED).choice(len(train), self.SIZE, replace=False))
        return self._save([train[i] for i in picked], {"moses_train_index": picked},
                          {"source": f"MOSES train, {self.SIZE} molecules sampled with seed {self.SAMPLE_SEED}"})

    def references(self, budget: str) -> list[Reference]:
        return [Reference.from_moses("test"), Reference.from_moses("test_scaffolds")]

    def card(self) -> Mapping[str, Any]:
        return {"name": self.name, "reference": "a 250,000-molecule sample of MOSES train (Polykovskiy et al. 2020); "
                "not ZINC250k", "properties": ", ".join(PROPERTY_NAMES),
                "split": "seed-42 permutation: 90 / 5 / 5 % train / valid / test; test side: MOSES's test statistics"}


class Zinc250k(_PropertySet, _PermutationSplit):
    name = "zinc250k"
    cache_name = "generation-zinc250k-v1"
    reference_cache = "generation-zinc250k-reference"
    FILE = "250k_rndm_zinc_drugs_clean_3.csv"

    def prepare(self, source: Any = None) -> dict[str, Any]:
        """Read ZINC250k's CSV (``dig data prepare zinc250k --from FILE``), canonicalise, compute the
        properties; the file's logP / qed / SAS columns are kept as ``file_logP`` / ``file_qed`` / ``file_SAS``."""
        if source is None:
            raise DataError(f"{self.name} is not shipped offline: get {self.FILE} (the chemical VAE / JT-VAE release) "
                            f"and run: dig data prepare {self.name} --from PATH/{self.FILE}")
        path = Path(os.fspath(source))
        table = read_zinc250k_csv(path)
        extra = {f"file_{column}": np.array(table[column], dtype=np.float64) for column in ("logP", "qed", "SAS")}
        return self._save(table["smiles"], extra, {"source": str(path)})

    def card(self) -> Mapping[str, Any]:
        return {"name": self.name, "reference": "ZINC250k (Gómez-Bombarelli et al. 2018), prepared from its CSV",
                "properties": ", ".join(PROPERTY_NAMES),
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
