"""The generation track's protocol: a generator learns from training SMILES and samples new molecules.

- A dataset gives ``SmilesData``: canonical non-isomeric SMILES per split (``train`` is what novelty is
  measured against; ``valid`` is for model selection; the test side is a ``Reference`` of statistics), the
  atom vocabulary of its kekulized graphs and the largest molecule's heavy-atom count.
- A model is built by a factory ``build(vocabulary, max_atoms, **hparams)`` and has
  ``fit(train: list[str], valid: list[str], seed: int, on_epoch=None) -> dict`` (a history; may be empty)
  and ``sample(count: int, seed: int) -> list[str]`` (SMILES; invalid ones included: validity is a metric).
  A generator may set ``last_sample`` (metric name -> value, higher is better) after sampling, e.g. GraphDF's
  ``validity_without_check_frac``; the track records those beside the MOSES metrics.
- The evaluator is ``generation_metrics`` (pure, MOSES's definitions; ``metrics.py``).
- A goal-directed model (meta ``goal_directed``) also has ``fit_goal_directed(train, values, seed, on_epoch=None)``
  and ``optimise(starts, seed, record_every, target, task) -> list[list[str]]`` (candidate SMILES per start; ``task``
  "property" or "constrained"), and may set ``oracle_calls`` (property evaluations it made while optimising).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from dig.tracks.generation.graphs import AtomVocabulary


@dataclass(frozen=True)
class SmilesData:
    name: str
    train: list[str]  # the budget's training molecules (a prefix of the whole train split at small budgets)
    valid: list[str]
    train_all: frozenset[str]  # the whole train split: novelty is measured against it
    vocabulary: AtomVocabulary
    max_atoms: int


@runtime_checkable
class Generator(Protocol):
    def fit(self, train: list[str], valid: list[str], seed: int,
            on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None) -> dict[str, Any]: ...

    def sample(self, count: int, seed: int) -> list[str]: ...
