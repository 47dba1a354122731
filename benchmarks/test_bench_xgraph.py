"""Explainer speed, each against its reference in the same run:

- SubgraphX scoring every coalition of an MCTS expansion in one batched forward pass vs the same search
  scoring one coalition per forward pass (same seed, same explanation: asserted).
- dig's GNNExplainer vs PyG's ``torch_geometric.explain.GNNExplainer`` (through ``plugins/dig-pyg``: PyG's code
  on a PyG mirror of the same model), same epochs, on the same BA-Shapes node.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import RATIOS, median_seconds

from dig.tracks.xgraph.explainers import build_gnnexplainer
from dig.tracks.xgraph.models import build_gcn, build_gin
from dig.tracks.xgraph.subgraphx import SubgraphX
from dig.tracks.xgraph.synthetic import ba_2motifs, ba_shapes
from dig.tracks.xgraph.track import build_instances


def _frozen(model):
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.eval()


def test_subgraphx_batched_vs_one_coalition_per_pass(compare):
    torch.manual_seed(0)
    data = ba_2motifs(0, graphs=4)
    model = _frozen(build_gin(10, 2))
    (instance,) = build_instances(data, np.array([1]), model)
    settings = dict(rollouts=1, samples=10, expand_nodes=6)
    batched, single = SubgraphX(**settings), SubgraphX(**settings)
    torch.testing.assert_close(batched(model, instance, 0).node_mask, single(model, instance, 0, batched=False).node_mask)
    compare(lambda: batched(model, instance, 0), lambda: single(model, instance, 0, batched=False), rounds=3,
            label="speedup_vs_unbatched", note=f"{settings}, a {instance.num_nodes}-node BA-2Motifs graph")


@pytest.mark.parametrize("task", ["node", "graph"])
def test_gnnexplainer_vs_pyg(compare, task):
    pytest.importorskip("dig_pyg", reason="install plugins/dig-pyg (PyG's explainers) for this benchmark")
    from dig_pyg.explainers import PyGGNNExplainer

    torch.manual_seed(0)
    if task == "node":
        data, model, item, what = ba_shapes(0), _frozen(build_gcn(10, 4)), 400, "BA-Shapes computation graph (GCN)"
    else:
        data, model, item, what = ba_2motifs(0, graphs=4), _frozen(build_gin(10, 2)), 1, "BA-2Motifs graph (GIN)"
    (instance,) = build_instances(data, np.array([item]), model)
    ours, pyg = build_gnnexplainer(epochs=100), PyGGNNExplainer(epochs=100)
    compare(lambda: ours(model, instance, 0), lambda: pyg(model, instance, 0), rounds=5,
            label=f"speedup_vs_pyg_{task}", note=f"100 epochs, a {instance.num_edges}-edge {what}")
    if task == "node":
        RATIOS.append(("gnnexplainer_vs_pyg", "pyg_mirror_build_ms",
                       1e3 * median_seconds(lambda: __import__("dig_pyg.mirror").mirror.to_pyg(model)), "", "ms"))
