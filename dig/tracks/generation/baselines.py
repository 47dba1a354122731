"""Baselines every generator is read against.

``train-sampler`` returns molecules of the training set (MOSES's "train" row): validity and uniqueness 1,
novelty 0 by construction, and distribution metrics as close to the test set as the training set itself is —
the floor for novelty and the ceiling a generator's distribution metrics can be compared with.

In the optimisation tasks it picks from the data with the labels every model is given, generating nothing:
for each start, the three best training molecules and the ``neighbours`` training molecules most similar to
the start (Morgan radius-2 count Tanimoto) among those of higher value. Its top-3 is the data's best (GCPN's
"ZINC" row) and its constrained optimisation is retrieval: the floor an optimiser is read against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from dig.tracks.generation.graphs import AtomVocabulary
from dig.tracks.generation.optimisation import morgan_count_fingerprint
from dig.tracks.generation.properties import property_value


class TrainSampler:
    def __init__(self, vocabulary: AtomVocabulary, max_atoms: int, neighbours: int = 20) -> None:
        self._train: list[str] = []
        self._values: np.ndarray | None = None
        self.neighbours = neighbours

    def fit(self, train: list[str], valid: list[str], seed: int,
            on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None) -> dict[str, Any]:
        self._train = list(train)
        return {}

    def sample(self, count: int, seed: int) -> list[str]:
        """``count`` training SMILES drawn without replacement (with replacement when the set is smaller)."""
        if not self._train:
            raise RuntimeError("train-sampler must be fitted before sampling")
        rng = np.random.RandomState(seed)
        index = rng.choice(len(self._train), count, replace=count > len(self._train))
        return [self._train[i] for i in index]


    def fit_goal_directed(self, train: list[str], values: Sequence[float], seed: int,
                          on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None) -> dict[str, Any]:
        if len(values) != len(train):
            raise ValueError(f"train-sampler: {len(train)} training molecules but {len(values)} property values")
        self._train, self._values = list(train), np.asarray(values, dtype=np.float64)
        return {}

    def optimise(self, starts: Sequence[str], seed: int, record_every: int = 1, target: str = "plogp",
                 task: str = "property") -> list[list[str]]:
        """Either ``task``, per start: the 3 best training molecules, then its ``neighbours`` most similar training molecules of
        higher ``target`` value than the start (a start that does not parse gets the 3 best only)."""
        from rdkit import Chem, DataStructs

        if self._values is None:
            raise RuntimeError("train-sampler must be fitted goal-directed before optimising")
        values = np.nan_to_num(self._values, nan=-np.inf)
        best = [self._train[i] for i in np.argsort(-values, kind="stable")[:3]]
        molecules = [Chem.MolFromSmiles(s) for s in self._train]
        fingerprints = [morgan_count_fingerprint(m) for m in molecules if m is not None]
        parsed = np.array([i for i, m in enumerate(molecules) if m is not None])
        out = []
        for start in starts:
            mol = Chem.MolFromSmiles(start) if start else None
            found = list(best)
            if mol is not None and len(parsed):
                similarity = np.array(DataStructs.BulkTanimotoSimilarity(morgan_count_fingerprint(mol), fingerprints))
                higher = values[parsed] > property_value(mol, target)
                order = np.argsort(-np.where(higher, similarity, -1.0), kind="stable")[: self.neighbours]
                found += [self._train[parsed[i]] for i in order if higher[i]]
            out.append(list(dict.fromkeys(found)))
        return out


    def fit_composed(self, train: list[str], values: Mapping[str, Sequence[float]], seed: int,
                     on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None) -> dict[str, Any]:
        """The composition task's floor: no property is used, so every sample set is training molecules."""
        return self.fit(train, [], seed)

    def sample_composed(self, count: int, seed: int) -> dict[str, list[str]]:
        """The same ``count`` random training molecules stand for the composed set: what no generator at all
        reaches on every target (about the fraction of training molecules above all medians)."""
        return {"composed": self.sample(count, seed)}


def build_train_sampler(vocabulary: AtomVocabulary, max_atoms: int, **hparams) -> TrainSampler:
    return TrainSampler(vocabulary, max_atoms)
