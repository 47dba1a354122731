"""Registers the generation track's built-in entries through the ``dig`` entry-point group."""

from __future__ import annotations

from dig.plugins import hookimpl
from dig.registry import Registry
from dig.tracks.generation.baselines import build_train_sampler
from dig.tracks.generation.datasets import MosesSmiles, QM9Smiles
from dig.tracks.generation.graphdf import build_graphdf
from dig.tracks.generation.metrics import generation_metrics
from dig.tracks.generation.track import GenerationTrack

# GraphDF: ``paper`` is DIG's published QM9 configuration (R-GCN 3 x 128, 12 modulo-shift flows, batch 32,
# Adam 1e-3, 10 epochs, sampling temperatures 0.35 / 0.23); ``default`` is the same architecture at width 64,
# cut to 100 steps of 32 molecules so that a job fits the track's CPU budget: undertrained, and labelled so.
GRAPHDF_HPARAMS = {
    "smoke": {"hidden": 32, "flows": 4, "epochs": 1, "max_steps": 5, "valid_molecules": 100, "sample_batch": 200},
    "default": {"hidden": 64, "flows": 12, "epochs": 1, "max_steps": 100, "valid_molecules": 500},
    "paper": {"hidden": 128, "flows": 12, "epochs": 10, "valid_molecules": 1000},
}


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
    registry.add_model("graphdf", build_graphdf, track="generation", hparams=GRAPHDF_HPARAMS, relative_cost=20.0,
                       summary="GraphDF (Luo et al. 2021): discrete flow of modulo shifts over BFS atom/bond tokens")
