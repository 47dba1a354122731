"""The example explainer plugin (plugins/dig-pyg), installed as a third party would: PyG's GNNExplainer and
PGExplainer on a PyG mirror of dig's explained GNN."""

import numpy as np
import pytest
import torch

from dig.tracks.xgraph.models import build_gcn, build_gin
from dig.tracks.xgraph.protocol import check_explanation
from dig.tracks.xgraph.synthetic import ba_2motifs, tree_cycles
from dig.tracks.xgraph.track import build_instances

pytest.importorskip("torch_geometric")


def _instances(task):
    torch.manual_seed(0)
    if task == "node":
        data, model, items = tree_cycles(0), build_gcn(10, 2).eval(), np.array([600, 610])
    else:
        data, model, items = ba_2motifs(0, graphs=4), build_gin(10, 2).eval(), np.array([0, 1])
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, build_instances(data, items, model)


@pytest.mark.parametrize("task", ["node", "graph"])
def test_pyg_mirror_equals_dig_model_with_and_without_edge_masks(task, pyg_installed):
    from dig_pyg.mirror import to_pyg
    from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

    model, instances = _instances(task)
    mirror = to_pyg(model)
    for instance in instances:
        ours = model(instance.x, instance.graph, None, instance.batch())
        torch.testing.assert_close(mirror(instance.x, instance.edge_index), ours)
        mask = torch.rand(instance.num_edges, generator=torch.Generator().manual_seed(3))
        set_masks(mirror, mask, instance.edge_index, apply_sigmoid=False)
        torch.testing.assert_close(mirror(instance.x, instance.edge_index),
                                   model(instance.x, instance.graph, mask, instance.batch()))
        clear_masks(mirror)
    with pytest.raises(TypeError, match="needs its own PyG mirror"):
        to_pyg(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("task", ["node", "graph"])
def test_pyg_explainers_through_the_registry(task, pyg_installed):
    from dig.plugins import load_plugins

    registry = load_plugins().registry
    model, instances = _instances(task)
    gnnexplainer = registry.get("explainer", "pyg-gnnexplainer", track="xgraph")
    pgexplainer = registry.get("explainer", "pyg-pgexplainer", track="xgraph")
    assert gnnexplainer.plugin == "pyg" and pgexplainer.plugin == "pyg"
    explain = gnnexplainer.obj(epochs=5)
    fitted = pgexplainer.obj(epochs=2)
    fitted.fit(model, instances, seed=0)
    for explainer in (explain, fitted):
        first, second = explainer(model, instances[0], 0), explainer(model, instances[0], 0)
        check_explanation(first, instances[0], "pyg")
        torch.testing.assert_close(first.edge_mask, second.edge_mask)  # deterministic for a seed
