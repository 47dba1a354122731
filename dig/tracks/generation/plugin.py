"""Registers the generation track's built-in entries through the ``dig`` entry-point group."""

from __future__ import annotations

from dig.plugins import hookimpl
from dig.registry import Registry
from dig.tracks.generation.baselines import build_train_sampler
from dig.tracks.generation.char_rnn import build_char_rnn
from dig.tracks.generation.datasets import (
    CompositionTask,
    MosesPropertySet,
    MosesSmiles,
    OptimisationTask,
    QM9Smiles,
    Zinc250k,
)
from dig.tracks.generation.graphaf import build_graphaf
from dig.tracks.generation.graphdf import build_graphdf
from dig.tracks.generation.graphebm import build_graphebm
from dig.tracks.generation.metrics import generation_metrics
from dig.tracks.generation.optimisation import (
    composition_metrics,
    constrained_optimisation_metrics,
    property_optimisation_metrics,
)
from dig.tracks.generation.track import GenerationTrack

# GraphDF: ``paper`` is DIG's published QM9 configuration (R-GCN 3 x 128, 12 modulo-shift flows, batch 32,
# Adam 1e-3, 10 epochs, sampling temperatures 0.35 / 0.23); ``default`` is the same architecture at width 64,
# cut to 100 steps of 32 molecules so that a job fits the track's CPU budget: undertrained, and labelled so.
GRAPHDF_HPARAMS = {
    "smoke": {"hidden": 32, "flows": 4, "epochs": 1, "max_steps": 5, "valid_molecules": 100, "sample_batch": 200,
              "ppo_iterations": 2, "ppo_batch": 8, "optimise_samples": 100, "optimise_rollouts": 2},
    "default": {"hidden": 64, "flows": 12, "epochs": 1, "max_steps": 100, "valid_molecules": 500,
                "ppo_lr": 1e-2, "ppo_epochs": 4},
    "paper": {"hidden": 128, "flows": 12, "epochs": 10, "valid_molecules": 1000},
}
# GraphDF's and GraphAF's optimisation (PPO, ours; see AutoregressiveFlow.finetune): 50 iterations of 32 molecules,
# clip 0.2, then 10,000 samples (property) or 20 continuations of each start (constrained). Adam 1e-4 and 3 steps per
# iteration (the constructors') except GraphDF at default, 1e-2 and 4 steps: on moses-250k-props penalized logP
# (seed 0, 2026-12-07) its batch mean moved -4.33 -> -4.10 at 1e-4 x 3, -4.34 -> -3.90 at 1e-3 x 4, -4.34 -> -3.11
# after 200 iterations of 1e-3 x 4, -4.47 -> -2.53 at 1e-2 x 4; GraphAF's moved -4.33 -> -0.62 at 1e-4 x 3, and its
# density ratios overflowed at 1e-3 (before the dual clip).
# GraphAF: ``paper`` is DIG's published configuration (R-GCN 3 x 128, 12 affine layers, dequantization 0.9, batch
# 32, Adam 1e-3, temperature 0.75) for 10 epochs; ``default`` is the same architecture at width 64 cut to GraphDF's
# default budget (100 steps of 32 molecules): undertrained, and labelled so.
GRAPHAF_HPARAMS = {
    "smoke": {"hidden": 32, "flows": 4, "epochs": 1, "max_steps": 5, "valid_molecules": 100, "sample_batch": 200,
              "ppo_iterations": 2, "ppo_batch": 8, "optimise_samples": 100, "optimise_rollouts": 2},
    "default": {"hidden": 64, "flows": 12, "epochs": 1, "max_steps": 100, "valid_molecules": 500},
    "paper": {"hidden": 128, "flows": 12, "epochs": 10, "valid_molecules": 1000},
}

# CharRNN: ``paper`` is MOSES's configuration (3 LSTM layers of 768, dropout 0.2, batches of 64, Adam 1e-3 halved
# every 10 epochs, 80 epochs); ``smoke`` is a small network for the tests. It has no ``default`` row: on one CPU
# core a training step of MOSES's network takes 3.5 s, and even a 3 x 256 network after 300 steps (134 s) drew 2.9 %
# valid SMILES, so a row that fits the default budget would be neither MOSES's model nor a floor (measured
# 2026-11-24 on MOSES).
CHAR_RNN_HPARAMS = {
    "smoke": {"hidden": 64, "layers": 2, "epochs": 1, "max_steps": 5, "valid_molecules": 100, "sample_batch": 200},
    "paper": {"epochs": 80, "valid_molecules": 1000},
}
# GraphEBM: ``paper`` is DIG's published example configuration (the constructor's defaults, see graphebm.py);
# ``default`` is the same network and Langevin dynamics cut to 100 steps of 128 molecules (undertrained, and
# labelled so); ``smoke`` is a small network with 5 Langevin steps for the tests.
GRAPHEBM_HPARAMS = {
    "smoke": {"hidden": 16, "epochs": 1, "max_steps": 3, "langevin_steps": 5, "sample_batch": 200},
    "default": {"epochs": 1, "max_steps": 100},
    "paper": {"epochs": 20},
}
# relative_cost: a default job's time over train-sampler's on the same dataset (2026-12-07, 3 seeds: QM9 1.0-1.2 for
# the flows and 4.1 for GraphEBM, MOSES 1.3-1.5 and 4.1); CharRNN's 20 is a guess (it has no default job).
OPTIMISATION_TASKS = (
    ("plogp-opt", "property", "plogp", "Property optimisation: top-3 penalized logP"),
    ("qed-opt", "property", "qed", "Property optimisation: top-3 QED"),
    ("plogp-constrained", "constrained", "plogp", "Constrained optimisation of penalized logP from the 800 lowest"),
)
FLOWS_DO_NOT_COMPOSE = ("composition adds energies (GraphEBM's E1 + E2); the product of two flows' likelihoods has no "
                        "sampler here")
CHAR_RNN_UNSUITED = {"default": "MOSES's 3 x 768 LSTM takes 3.5 s per training step of 64 SMILES on one core "
                                "and needs tens of thousands of steps; run it with --budget paper"}


@hookimpl
def dig_register(registry: Registry) -> None:
    registry.add_track("generation", GenerationTrack(),
                       summary="Molecule generation: validity, uniqueness, novelty and MOSES's distribution metrics")
    registry.add_dataset("qm9-smiles", QM9Smiles(), track="generation", evaluator="moses",
                         summary="QM9's 130,831 SMILES (≤ 9 heavy atoms, qm9pack), 90 / 5 / 5 % split")
    registry.add_dataset("moses", MosesSmiles(), track="generation", evaluator="moses",
                         summary="MOSES train / test / test_scaffolds (molsets wheel files, never imported)")
    property_sets = {"moses-250k-props": MosesPropertySet(), "zinc250k": Zinc250k()}
    registry.add_dataset("moses-250k-props", property_sets["moses-250k-props"], track="generation", evaluator="moses",
                         summary="Property set: 250,000 MOSES train molecules with logP, QED, SA, penalized logP "
                                 "(not ZINC250k)")
    registry.add_dataset("zinc250k", property_sets["zinc250k"], track="generation", evaluator="moses",
                         summary="ZINC250k with logP, QED, SA, penalized logP: dig data prepare zinc250k --from "
                                 "250k_rndm_zinc_drugs_clean_3.csv (not shipped offline)")
    for corpus, data in property_sets.items():
        for suffix, task, target, what in OPTIMISATION_TASKS:
            registry.add_dataset(f"{corpus}-{suffix}", OptimisationTask(data, task, target), track="generation",
                                 evaluator=f"{task}-optimisation", task=task, summary=f"{what} on {corpus}")
        registry.add_dataset(f"{corpus}-qed-plogp-composition", CompositionTask(data, ("qed", "plogp")), track="generation",
                             evaluator="composition", task="composition",
                             summary=f"Composition: QED and penalized logP generators composed, on {corpus}")
    registry.add_evaluator("composition", composition_metrics, track="generation", higher_is_better=True,
                           summary="Validity, mean property and the fraction meeting every property's training "
                                   "median, for the composed and the single generators")
    registry.add_evaluator("property-optimisation", property_optimisation_metrics, track="generation",
                           higher_is_better=True, summary="Top-3 penalized logP / QED of distinct valid molecules, "
                                                          "with oracle calls")
    registry.add_evaluator("constrained-optimisation", constrained_optimisation_metrics, track="generation",
                           higher_is_better=True, summary="JT-VAE's constrained optimisation: success and "
                                                          "improvement at similarity 0 / 0.2 / 0.4 / 0.6")
    registry.add_evaluator("moses", generation_metrics, track="generation", higher_is_better=True,
                           summary="MOSES metrics: validity, unique@k, novelty, FCD, SNN, Frag, Scaf, IntDiv, filters")
    registry.add_model("train-sampler", build_train_sampler, track="generation", relative_cost=1.0, goal_directed=True,
                       goal_directed_tasks=("property", "constrained", "composition"),
                       summary="Baseline: training molecules (novelty 0 by construction; MOSES's train row)")
    registry.add_model("graphdf", build_graphdf, track="generation", hparams=GRAPHDF_HPARAMS, relative_cost=1.3,
                       goal_directed=True, goal_directed_missing=FLOWS_DO_NOT_COMPOSE,
                       summary="GraphDF (Luo et al. 2021): discrete flow of modulo shifts over BFS atom/bond tokens")
    registry.add_model("graphaf", build_graphaf, track="generation", hparams=GRAPHAF_HPARAMS, relative_cost=1.3,
                       goal_directed=True, goal_directed_missing=FLOWS_DO_NOT_COMPOSE,
                       summary="GraphAF (Shi et al. 2020): continuous autoregressive flow of affine layers over "
                               "dequantized BFS atom/bond tokens")
    registry.add_model("graphebm", build_graphebm, track="generation", hparams=GRAPHEBM_HPARAMS, relative_cost=4.1,
                       goal_directed=True, goal_directed_tasks=("property", "constrained", "composition"),
                       summary="GraphEBM (Liu et al. 2021): R-GCN energy, contrastive divergence, Langevin sampling")
    registry.add_model("char-rnn", build_char_rnn, track="generation", hparams=CHAR_RNN_HPARAMS, relative_cost=20.0,
                       unsuited_budgets=CHAR_RNN_UNSUITED, goal_directed_missing="MOSES's CharRNN has no goal-directed mode",
                       summary="CharRNN (Segler et al. 2018; MOSES's baseline): a 3 x 768 LSTM over SMILES characters")
