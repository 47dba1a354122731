"""Registers the generation track's built-in entries through the ``dig`` entry-point group."""

from __future__ import annotations

from dig.plugins import hookimpl
from dig.registry import Registry
from dig.tracks.generation.baselines import build_train_sampler
from dig.tracks.generation.datasets import MosesSmiles, QM9Smiles
from dig.tracks.generation.metrics import generation_metrics
from dig.tracks.generation.track import GenerationTrack


@hookimpl
def dig_register(registry: Registry) -> None:
    registry.add_track("generation", GenerationTrack(),
                       summary="Molecule generation: validity, uniqueness, novelty and MOSES's distribution metrics")
    registry.add_dataset("qm9-smiles", QM9Smiles(), track="generation", evaluator="moses",
                         summary="QM9's 130,831 SMILES (≤ 9 heavy atoms, qm9pack), 90 / 5 / 5 % split")
    registry.add_dataset("moses", MosesSmiles(), track="generation", evaluator="moses",
                         summary="MOSES train / test / test_scaffolds (molsets wheel files, never imported)")
    registry.add_evaluator("moses", generation_metrics, track="generation", higher_is_better=True,
                           summary="MOSES metrics: validity, unique@k, novelty, FCD, SNN, Frag, Scaf, IntDiv, filters")
    registry.add_model("train-sampler", build_train_sampler, track="generation", relative_cost=1.0,
                       summary="Baseline: training molecules (novelty 0 by construction; MOSES's train row)")
