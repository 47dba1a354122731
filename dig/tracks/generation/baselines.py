"""Baselines every generator is read against.

``train-sampler`` returns molecules of the training set (MOSES's "train" row): validity and uniqueness 1,
novelty 0 by construction, and distribution metrics as close to the test set as the training set itself is —
the floor for novelty and the ceiling a generator's distribution metrics can be compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dig.tracks.generation.graphs import AtomVocabulary


class TrainSampler:
    def __init__(self, vocabulary: AtomVocabulary, max_atoms: int) -> None:
        self._train: list[str] = []

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


def build_train_sampler(vocabulary: AtomVocabulary, max_atoms: int, **hparams) -> TrainSampler:
    return TrainSampler(vocabulary, max_atoms)
