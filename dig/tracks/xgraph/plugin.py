"""Registers the explainability track's built-in entries through the ``dig`` entry-point group, as a
third-party plugin would."""

from __future__ import annotations

from dig.plugins import hookimpl
from dig.registry import Registry
from dig.tracks.xgraph.datasets import ExplainDataset
from dig.tracks.xgraph.explainers import (
    build_degree,
    build_gnnexplainer,
    build_gradcam,
    build_integrated_gradients,
    build_random,
    build_saliency,
)
from dig.tracks.xgraph.molecules import nci_nitro
from dig.tracks.xgraph.pgexplainer import build_pgexplainer
from dig.tracks.xgraph.subgraphx import build_subgraphx
from dig.tracks.xgraph.synthetic import ba_2motifs, ba_community, ba_shapes, tree_cycles, tree_grid
from dig.tracks.xgraph.track import XGraphTrack

GNNEXPLAINER = "Ying et al., GNNExplainer, NeurIPS 2019 (synthetic benchmarks of its Section 5)"
DATASETS = {
    "ba-shapes": (ba_shapes, "BA base (300 nodes) + 80 houses + 1 % random edges; 4 node classes", GNNEXPLAINER),
    "ba-community": (ba_community, "two BA-Shapes joined by random edges, Gaussian features; 8 classes", GNNEXPLAINER),
    "tree-cycles": (tree_cycles, "binary tree (511 nodes) + 60 six-cycles; 2 node classes", GNNEXPLAINER),
    "tree-grid": (tree_grid, "binary tree (511 nodes) + 80 3x3 grids; 2 node classes", GNNEXPLAINER),
    "ba-2motifs": (ba_2motifs, "1,000 BA graphs with a house (class 0) or a five-cycle (class 1)",
                   "Luo et al., PGExplainer, NeurIPS 2020"),
    "nci-nitro": (nci_nitro, "NCI molecules (RDKit's first_5K.smi) labelled by the aromatic-nitro alert (a rule)",
                  "labels from a structural rule (Debnath et al. 1991's mutagenicity mechanism), not an assay"),
}
PAPER_SUBGRAPHX = {"rollouts": 20, "samples": 100, "expand_nodes": 14}  # the paper's settings
SUBGRAPHX_HPARAMS = {
    "smoke": {"rollouts": 2, "samples": 8, "expand_nodes": 4},
    # the paper's search on at most the target's 50 nearest nodes: ba-community's computation graphs hold up to
    # 306 nodes, about 6 min per node uncapped (seed 0, 5 nodes: 24.8 s per node and gt edge AUC 75.9 % with the
    # cap, against 46.9 s and 54.4 % uncapped with 5 rollouts x 25 samples instead)
    "default": {**PAPER_SUBGRAPHX, "max_root_nodes": 50},
    "paper": PAPER_SUBGRAPHX,
}

# At the paper's settings one BA-Shapes node costs ~75 s (computation graphs of 126-150 nodes: the first rollout
# alone expands ~140 levels, 14 children x 200 coalitions each), so the default budget explains a fixed sample
# of test items (explained_items: the same sample for every seed), the paper budget every one.
SUBGRAPHX_INSTANCES = {"default": 5}

@hookimpl
def dig_register(registry: Registry) -> None:
    registry.add_track("xgraph", XGraphTrack(), summary="Explainability: explainers scored against ground truth")
    for name, (build, summary, source) in DATASETS.items():
        registry.add_dataset(name, ExplainDataset(name, build, {"summary": summary, "reference": source}),
                             track="xgraph", summary=summary)
    registry.add_dataset("mutag", ExplainDataset("mutag", None, {"tu_name": "MUTAG", "reference": "Debnath et al. 1991"}),
                         track="xgraph", summary="MUTAG from its TU files (dig data prepare mutag --from FOLDER)")
    registry.add_explainer("random", build_random, track="xgraph", summary="Baseline: uniform random edge scores")
    registry.add_explainer("degree", build_degree, track="xgraph", summary="Baseline: deg(u) + deg(v), no model")
    registry.add_explainer("saliency", build_saliency, track="xgraph", summary="|d p_c / d edge weight| (captum Saliency)")
    registry.add_explainer("gradcam", build_gradcam, track="xgraph",
                           summary="Grad-CAM on the last convolution's node features (Pope et al. 2019)")
    registry.add_explainer("integrated-gradients", build_integrated_gradients, track="xgraph",
                           hparams={"smoke": {"steps": 8}, "default": {"steps": 50}},
                           summary="Integrated gradients on edge weights from the empty graph, captum (Sundararajan 2017)")
    registry.add_explainer("integrated-gradients-abs", build_integrated_gradients, track="xgraph",
                           hparams={"smoke": {"steps": 8, "absolute": True}, "default": {"steps": 50, "absolute": True}},
                           summary="Variant: integrated gradients ranked by magnitude |IG_e| (signed IG ties random on "
                                   "BA-Shapes)")
    registry.add_explainer("gnnexplainer", build_gnnexplainer, track="xgraph",
                           hparams={"smoke": {"epochs": 20}, "default": {"epochs": 100}}, relative_cost=5.0,
                           summary="GNNExplainer: learned soft edge mask with size and entropy penalties (Ying 2019)")
    registry.add_explainer("pgexplainer", build_pgexplainer, track="xgraph",
                           hparams={"smoke": {"epochs": 5}, "default": {"epochs": 30}}, relative_cost=2.0,
                           summary="PGExplainer: an MLP on node embeddings gives every edge's mask, fitted on "
                                   "training instances (Luo et al. 2020)")
    registry.add_explainer("subgraphx", build_subgraphx, track="xgraph", hparams=SUBGRAPHX_HPARAMS, relative_cost=50.0,
                           max_instances=SUBGRAPHX_INSTANCES,
                           summary="SubgraphX: MCTS over connected subgraphs scored by L-Shapley (Yuan et al. 2021)")
