"""The explainability track: dataset definitions, the TU reader, metrics on hand-computed cases, the explainer
contract, and SubgraphX's Shapley estimate against the exact value."""

import numpy as np
import pytest
import torch

from dig.errors import DataError
from dig.ops import CSRGraph
from dig.tracks.xgraph.evaluators import characterization, explanation_metrics, roc_auc
from dig.tracks.xgraph.explainers import (
    build_degree,
    build_gnnexplainer,
    build_gradcam,
    build_integrated_gradients,
    build_random,
    build_saliency,
)
from dig.tracks.xgraph.models import build_gcn, build_gin
from dig.tracks.xgraph.molecules import nci_nitro, read_tu
from dig.tracks.xgraph.pgexplainer import build_pgexplainer
from dig.tracks.xgraph.protocol import Explanation, Instance, check_explanation
from dig.tracks.xgraph.subgraphx import SubgraphX, coalition_values, exact_shapley, shapley_masks
from dig.tracks.xgraph.synthetic import ba_2motifs, ba_shapes, tree_cycles, tree_grid
from dig.tracks.xgraph.track import build_instances


def _undirected(data):
    return {(min(u, v), max(u, v)) for u, v in data.edge_index.T.tolist()}


def test_ba_shapes_follows_the_gnnexplainer_definition():
    data = ba_shapes(seed=0)
    assert data.x.shape == (700, 10) and data.num_classes == 4
    assert np.bincount(data.y).tolist() == [300, 160, 160, 80]
    base_edges, planted = 5 + 294 * 5, 80 * 7  # BA(300, 5) and 80 houses of 6 edges + 1 attaching edge
    assert len(_undirected(data)) == base_edges + planted + int(0.01 * (base_edges + planted))
    assert data.edge_truth.sum() == 80 * 6 * 2  # both directions of every house edge
    src, dst = data.edge_index[:, data.edge_truth]
    assert (data.motif[src] == data.motif[dst]).all() and (data.motif[src] >= 0).all()
    roof = np.flatnonzero(data.y == 3)
    inside = [np.intersect1d(data.edge_index[1, data.edge_index[0] == r], np.flatnonzero(data.motif == data.motif[r])).size
              for r in roof]
    assert set(inside) == {2}  # a roof is linked to the two nodes under it
    np.testing.assert_array_equal(ba_shapes(seed=0).edge_index, data.edge_index)  # deterministic


def test_tree_motif_datasets_and_ba_2motifs_definitions():
    cycles, grids = tree_cycles(0), tree_grid(0)
    assert cycles.x.shape[0] == 511 + 60 * 6 and np.bincount(cycles.y).tolist() == [511, 360]
    assert len(_undirected(cycles)) == 930 + int(0.01 * 930) and cycles.edge_truth.sum() == 60 * 6 * 2
    assert grids.x.shape[0] == 511 + 80 * 9 and len(_undirected(grids)) == 1550 + int(0.1 * 1550)
    assert grids.edge_truth.sum() == 80 * 12 * 2
    motifs = ba_2motifs(0, graphs=20)
    assert motifs.num_graphs == 20 and np.bincount(motifs.y).tolist() == [10, 10]
    truth_per_graph = np.add.reduceat(motifs.edge_truth.astype(int), motifs.edge_ptr[:-1])
    assert truth_per_graph.tolist() == [12 if g % 2 == 0 else 10 for g in range(20)]  # house 6 edges, cycle 5


def test_nci_nitro_labels_come_from_the_aromatic_nitro_alert():
    data = nci_nitro(0)
    assert data.num_graphs == 2 * 359 and np.bincount(data.y).tolist() == [359, 359]
    for g in range(data.num_graphs):
        nodes = slice(data.node_ptr[g], data.node_ptr[g + 1])
        edges = slice(data.edge_ptr[g], data.edge_ptr[g + 1])
        has_alert = bool(data.edge_truth[edges].any())
        assert has_alert == bool(data.y[g]), g
        if has_alert:
            features = data.x[nodes][data.node_truth[nodes]]
            assert features[:, 1].sum() >= 1 and features[:, 2].sum() >= 2  # N and two O
            assert features[:, -2].sum() >= 1  # the aromatic atom the nitro group sits on


def _write_tu(folder, a_lines):
    folder.mkdir()
    (folder / "MUTAG_A.txt").write_text(a_lines)
    (folder / "MUTAG_graph_indicator.txt").write_text("1\n1\n1\n1\n2\n2\n")
    (folder / "MUTAG_graph_labels.txt").write_text("1\n-1\n")
    (folder / "MUTAG_node_labels.txt").write_text("0\n1\n2\n2\n0\n0\n")


def test_tu_reader_on_a_fixture_in_that_format(tmp_path):
    """MUTAG layout: 1-based edges, graph indicator, labels -1 / 1; a nitro group N(O)O is the ground truth."""
    edges = "1, 2\n2, 1\n2, 3\n3, 2\n2, 4\n4, 2\n5, 6\n6, 5\n"
    _write_tu(tmp_path / "ok", edges)
    data = read_tu(tmp_path / "ok")
    assert data.num_graphs == 2 and data.y.tolist() == [1, 0] and data.x.shape == (6, 3)
    assert data.edge_ptr.tolist() == [0, 6, 8]
    truth = {tuple(e) for e in data.edge_index[:, data.edge_truth].T.tolist()}
    assert truth == {(1, 2), (2, 1), (1, 3), (3, 1)}  # N-O edges only, not the C-N edge
    _write_tu(tmp_path / "bad", "1, 2\n2, x\n")
    with pytest.raises(DataError, match=r"MUTAG_A.txt:2: not integers"):
        read_tu(tmp_path / "bad")
    _write_tu(tmp_path / "far", "1, 9\n")
    with pytest.raises(DataError, match="node ids must be within 1..6"):
        read_tu(tmp_path / "far")


def test_roc_auc_and_characterization_on_hand_computed_cases():
    assert roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0])) == 1.0
    assert roc_auc(np.array([0.1, 0.8, 0.9, 0.2]), np.array([1, 1, 0, 0])) == 0.25
    assert roc_auc(np.array([0.5, 0.5, 0.5]), np.array([1, 0, 0])) == 0.5  # ties count half
    assert characterization(0.5, 0.5) == pytest.approx(0.5)
    assert characterization(0.8, 0.2) == pytest.approx(1.0 / (0.5 / 0.8 + 0.5 / 0.8))
    assert characterization(0.0, 0.2) == 0.0
    out = explanation_metrics([0.9, 0.7], [[0.2], [0.3]], [[0.8], [0.7]], [1.0, 0.5], sparsities=[0.7])
    assert out["fidelity_plus_s70_prob"] == pytest.approx(np.mean([0.7, 0.4]))
    assert out["fidelity_minus_s70_prob"] == pytest.approx(np.mean([0.1, 0.0]))
    assert out["gt_edge_auc_pct"] == pytest.approx(75.0)
    assert out["characterization_s70_score"] == pytest.approx(characterization(0.55, 0.05))
    assert "gt_node_auc_pct" not in out
    assert explanation_metrics([0.9], [[0.2]], [[0.8]], [1.0], sparsities=[0.7],
                               node_aucs=[0.5, 1.0])["gt_node_auc_pct"] == pytest.approx(75.0)


def test_node_scores_are_the_node_mask_or_the_mean_over_a_nodes_edges():
    # path 0 - 1 - 2 stored both ways, plus node 3 with no edge
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    graph, perm = CSRGraph.from_edge_index(edge_index, 4)
    instance = Instance(x=torch.ones(4, 1), edge_index=edge_index[:, perm], graph=graph, target=None, label=0,
                        edge_truth=torch.zeros(4, dtype=torch.bool), node_truth=torch.zeros(4, dtype=torch.bool))
    scores = {(0, 1): 0.8, (1, 0): 0.6, (1, 2): 0.2, (2, 1): 0.0}
    mask = torch.tensor([scores[(int(u), int(v))] for u, v in instance.edge_index.t()])
    nodes = Explanation(mask, None, None, 0).node_scores(instance)
    # node 1 touches all four directed edges, nodes 0 and 2 two each (as source and as destination)
    torch.testing.assert_close(nodes, torch.tensor([0.7, 0.4, 0.1, 0.0]))
    given = torch.tensor([0.1, 0.9, 0.3, 0.2])
    torch.testing.assert_close(Explanation(None, given, None, 0).node_scores(instance), given)


def test_metrics_equal_pygs_where_the_definitions_are_the_same():
    """characterization and the fidelity curve AUC against torch_geometric.explain.metric on the same inputs;
    the ground-truth AUC against the pairwise definition (PyG's needs torchmetrics, not installed here)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_geometric.explain.metric import characterization_score
        from torch_geometric.explain.metric import fidelity_curve_auc as pyg_curve_auc

    from dig.tracks.xgraph.evaluators import fidelity_curve_auc

    rng = np.random.RandomState(0)
    for _ in range(20):
        plus, minus = rng.uniform(0.01, 0.99, 5), rng.uniform(-0.5, 0.99, 5)
        x = np.sort(rng.uniform(0, 1, 5))
        assert characterization(plus[0], minus[0]) == pytest.approx(
            float(characterization_score(torch.tensor(plus[0]), torch.tensor(minus[0]))), rel=1e-12)
        assert fidelity_curve_auc(plus, minus, x) == pytest.approx(
            float(pyg_curve_auc(torch.tensor(plus), torch.tensor(minus), torch.tensor(x))), rel=1e-9)
        scores, truth = rng.randint(0, 4, 12).astype(float), rng.rand(12) < 0.4
        truth[:2] = [True, False]
        pairs = [(p > n) + 0.5 * (p == n) for p in scores[truth] for n in scores[~truth]]
        assert roc_auc(scores, truth) == pytest.approx(np.mean(pairs), rel=1e-12)


def _graph_instance(model_seed=0):
    """A 7-node graph (a triangle and a path) for a small random GIN."""
    edges = torch.tensor([[0, 1], [1, 2], [2, 0], [2, 3], [3, 4], [4, 5], [5, 6]]).T
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)
    graph, perm = CSRGraph.from_edge_index(edge_index, 7)
    torch.manual_seed(model_seed)
    model = build_gin(3, 2, hidden=8, layers=2).eval()
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    instance = Instance(x=x, edge_index=edge_index[:, perm], graph=graph, target=None, label=0,
                        edge_truth=torch.zeros(14, dtype=torch.bool), node_truth=torch.zeros(7, dtype=torch.bool))
    return model, instance


def test_explanation_hard_keeps_the_top_edges_and_bad_masks_are_named():
    model, instance = _graph_instance()
    explanation = Explanation(torch.arange(14, dtype=torch.float32), None, None, 0)
    hard = explanation.hard(instance, 0.5)
    assert hard.sum() == 7 and hard[7:].all()
    node = Explanation(None, torch.tensor([1.0, 1, 1, 0, 0, 0, 0]), None, 0)
    chosen = torch.nonzero(node.hard(instance, 1 - 6 / 14)).flatten().tolist()
    assert chosen == torch.nonzero((instance.edge_index < 3).all(0)).flatten().tolist()  # the triangle's 6 edges
    with pytest.raises(ValueError, match="returned edge_mask of shape \\[3\\]; the instance has 14 edges"):
        check_explanation(Explanation(torch.ones(3), None, None, 0), instance, "broken")


def test_an_instance_cap_explains_a_fixed_sample_of_the_same_items():
    from dig.plugins import load_plugins
    from dig.tracks.xgraph.track import explained_items

    items = np.arange(100, 160)
    sample = explained_items(items, 5)
    assert len(sample) == 5 and set(sample) <= set(items) and (np.diff(sample) > 0).all()
    np.testing.assert_array_equal(sample, explained_items(items, 5))
    assert explained_items(items, None) is items and explained_items(items, 600) is items
    registry = load_plugins().registry
    track = registry.get("track", "xgraph").obj
    dataset = registry.get("dataset", "tree-cycles", track="xgraph")
    capped = track.job_config(dataset, registry.get("explainer", "subgraphx", track="xgraph"), "default", {})
    full = track.job_config(dataset, registry.get("explainer", "saliency", track="xgraph"), "default", {})
    assert capped["instances"] == 5 < full["instances"] and capped["max_instances"] == 5


def test_subgraphx_shapley_estimate_matches_the_exact_value():
    """Monte-Carlo L-Shapley of a subgraph (one player among its L-hop neighbours) against enumeration."""
    model, instance = _graph_instance()
    subgraph = frozenset({0, 1, 2})
    exact = exact_shapley(model, instance, subgraph, hops=2)
    explainer = SubgraphX(samples=4000, hops=2)
    from dig.tracks.xgraph.subgraphx import _adjacency

    (estimate,) = explainer._score(model, instance, [subgraph], _adjacency(instance), 2, np.random.RandomState(0))
    assert estimate == pytest.approx(exact, abs=0.01), (estimate, exact)
    with_s, without = shapley_masks(subgraph, _adjacency(instance), 2, 50, np.random.RandomState(0))
    assert with_s[:, [0, 1, 2]].all() and not without[:, [0, 1, 2]].any()
    assert with_s[:, 6].all() and without[:, 6].all()  # node 6 is 4 hops away: always present


def test_subgraphx_batches_every_coalition_of_an_expansion_into_one_pass():
    model, instance = _graph_instance()
    batched, single = SubgraphX(rollouts=3, samples=6, min_nodes=3, max_nodes=4), SubgraphX(rollouts=3, samples=6,
                                                                                            min_nodes=3, max_nodes=4)
    a, b = batched(model, instance, seed=0), single(model, instance, seed=0, batched=False)
    torch.testing.assert_close(a.node_mask, b.node_mask)
    assert 0 < batched.forward_passes * 6 * 2 <= single.forward_passes
    assert 1 <= int(a.node_mask.sum()) <= 4


def test_subgraphx_root_cap_searches_the_nearest_nodes_only():
    """``max_root_nodes``: the search runs on the target's nearest nodes (breadth-first) and the edges among
    them, and the mask is 0 elsewhere; a cap at or above the computation graph's size changes nothing."""
    from dig.tracks.xgraph.subgraphx import _adjacency, induced_instance, nearest_nodes

    data = tree_cycles(0)
    torch.manual_seed(0)
    model = build_gcn(10, 2).eval()
    instance = build_instances(data, np.array([600]), model)[0]
    settings = dict(rollouts=2, samples=6, expand_nodes=4)
    full = SubgraphX(**settings)(model, instance, seed=3)
    torch.testing.assert_close(SubgraphX(max_root_nodes=instance.num_nodes, **settings)(model, instance, seed=3).node_mask,
                               full.node_mask)
    cap = 8
    assert instance.num_nodes > cap
    adjacency = _adjacency(instance)
    nearest = nearest_nodes(adjacency, instance.target, cap)
    distance = {instance.target: 0}
    for _ in range(instance.num_nodes):
        for u in list(distance):
            for v in adjacency[u]:
                distance.setdefault(v, distance[u] + 1)
    assert len(nearest) == cap and instance.target in nearest
    assert max(distance[int(u)] for u in nearest) <= min(distance[u] for u in range(instance.num_nodes) if u not in nearest)
    capped = SubgraphX(max_root_nodes=cap, **settings)(model, instance, seed=3)
    inner = SubgraphX(**settings)(model, induced_instance(instance, nearest), seed=3)
    outside = np.setdiff1d(np.arange(instance.num_nodes), nearest)
    assert capped.node_mask.shape == (instance.num_nodes,) and not capped.node_mask[outside].any()
    torch.testing.assert_close(capped.node_mask[nearest], inner.node_mask)
    small = induced_instance(instance, nearest)
    src, dst = small.edge_index
    assert small.graph.num_edges == small.num_edges and bool((small.graph.row == dst).all())
    assert small.num_edges == int(np.isin(instance.edge_index.numpy(), nearest).all(0).sum())


@pytest.mark.parametrize("task", ["node", "graph"])
def test_subgraphx_coalition_values_equal_the_split_graph_one_at_a_time(task):
    """The batched copies hold only kept nodes and their edges; each value must equal the model on the
    instance itself with the other nodes' features zeroed and their edges removed (DIG's zero filling +
    split), computed one coalition at a time."""
    if task == "node":
        data = tree_cycles(0)
        torch.manual_seed(0)
        model = build_gcn(10, 2).eval()
        instance = build_instances(data, np.array([600]), model)[0]
    else:
        model, instance = _graph_instance()
    keep = torch.from_numpy(np.random.RandomState(0).rand(12, instance.num_nodes) < 0.5)
    keep[0] = True
    keep[1] = False
    with torch.no_grad():
        batched = coalition_values(model, instance, keep)
        for row, kept in enumerate(keep):
            src, dst = instance.edge_index
            edges = instance.edge_index[:, kept[src] & kept[dst]]
            graph, _ = CSRGraph.from_edge_index(edges, instance.num_nodes)
            logits = model(instance.x * kept.unsqueeze(-1), graph, None, instance.batch())
            logits = logits[instance.target] if instance.target is not None else logits[0]
            assert batched[row] == pytest.approx(float(torch.softmax(logits, -1)[instance.label]), abs=1e-6)


@pytest.mark.parametrize("task", ["node", "graph"])
def test_every_explainer_returns_masks_of_the_instance_size(task):
    if task == "node":
        data = tree_cycles(0)
        model = build_gcn(10, 2).eval()
        instances = build_instances(data, np.array([600]), model)
    else:
        data = ba_2motifs(0, graphs=4)
        model = build_gin(10, 2).eval()
        instances = build_instances(data, np.array([1]), model)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    instance = instances[0]
    assert instance.edge_truth.any() and (instance.target is not None) == (task == "node")
    pgexplainer = build_pgexplainer(epochs=2)
    with pytest.raises(RuntimeError, match="must be fitted"):
        pgexplainer(model, instance, 0)
    pgexplainer.fit(model, instances, seed=0)
    explainers = [build_random(), build_degree(), build_saliency(), build_integrated_gradients(steps=4),
                  build_gnnexplainer(epochs=5), SubgraphX(rollouts=1, samples=4, expand_nodes=3), pgexplainer,
                  build_gradcam()]
    for explainer in explainers:
        explanation = explainer(model, instance, 0)
        check_explanation(explanation, instance, type(explainer).__name__)
        assert explanation.edge_scores(instance).shape == (instance.num_edges,)
        assert explanation.node_scores(instance).shape == (instance.num_nodes,)
        if task == "node" and isinstance(explainer, SubgraphX):
            assert explanation.node_mask[instance.target] == 1.0  # SubgraphX keeps the explained node
    again = build_gnnexplainer(epochs=5)(model, instance, 0)
    torch.testing.assert_close(again.edge_mask, explainers[4](model, instance, 0).edge_mask)  # deterministic
    refit = build_pgexplainer(epochs=2)
    refit.fit(model, instances, seed=0)
    torch.testing.assert_close(refit(model, instance, 0).edge_mask, pgexplainer(model, instance, 0).edge_mask)
    gnnexplainer = explainers[4](model, instance, 0)
    unreachable = _edges_beyond_reach(instance, model.num_layers)
    assert unreachable.any() == (task == "node")
    assert (gnnexplainer.edge_mask[unreachable] == 0).all()  # PyG's hard mask: edges that cannot change p_c
    assert (gnnexplainer.edge_mask > 0).any()


def _edges_beyond_reach(instance, layers):
    """Edges j -> i whose message cannot reach the explained node in ``layers`` rounds (i farther than
    layers - 1 hops from it); none for a graph-level instance."""
    if instance.target is None:
        return torch.zeros(instance.num_edges, dtype=torch.bool)
    src, dst = instance.edge_index.tolist()
    hops = {instance.target: 0}
    for depth in range(1, layers + 1):
        for a, b in zip(src, dst, strict=True):
            if b in hops and hops[b] == depth - 1 and a not in hops:
                hops[a] = depth
    return torch.tensor([hops.get(b, layers + 1) > layers - 1 for b in dst])


def test_xgraph_bench_through_the_cli(tmp_path):
    """A tiny end-to-end run: a node and a graph dataset, a baseline and SubgraphX, records and a CSV."""
    import json

    from conftest import run_dig

    out = run_dig("bench", "--track", "xgraph", "--datasets", "tree-cycles,ba-2motifs", "--models",
                  "random,subgraphx", "--seeds", "0", "--budget", "smoke", "--quiet", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "xgraph").glob("*.json")]
    assert {(r["dataset"], r["model"]) for r in records} == {
        (d, m) for d in ("tree-cycles", "ba-2motifs") for m in ("random", "subgraphx")}
    for record in records:
        names = {m["name"] for m in record["metrics"] if m["split"] == "test"}
        assert {"gt_edge_auc_pct", "gt_node_auc_pct", "fidelity_plus_s70_prob", "characterization_s70_score",
                "gnn_accuracy_pct"} <= names
    unknown = run_dig("bench", "--track", "xgraph", "--models", "subgraphy", "--budget", "smoke", "--out", str(tmp_path))
    assert unknown.returncode == 2 and "subgraphx" in unknown.stderr  # the close match is named


def test_gradient_attributions_through_captum_match_their_definitions():
    from dig.tracks.xgraph.explainers import class_probability

    model, instance = _graph_instance()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    weight = torch.ones(instance.num_edges, requires_grad=True)
    (grad,) = torch.autograd.grad(class_probability(model, instance, weight), weight)
    torch.testing.assert_close(build_saliency()(model, instance, 0).edge_mask, grad.abs())
    # completeness (Sundararajan et al. 2017): the attributions sum to p_c(full graph) - p_c(empty graph)
    attribution = build_integrated_gradients(steps=64)(model, instance, 0).edge_mask
    gap = class_probability(model, instance, torch.ones(instance.num_edges)) - class_probability(
        model, instance, torch.zeros(instance.num_edges))
    assert float(attribution.sum()) == pytest.approx(float(gap), abs=1e-3)
    # the named variant ranks the same attributions by magnitude
    assert (attribution < 0).any()  # the check below would be vacuous on all-positive attributions
    torch.testing.assert_close(build_integrated_gradients(steps=64, absolute=True)(model, instance, 0).edge_mask,
                               attribution.abs())


@pytest.mark.parametrize("task", ["node", "graph"])
def test_attribution_forward_scores_every_weight_vector_in_one_pass_as_one_at_a_time(task):
    """Integrated gradients' steps go through disjoint copies of the instance in one pass: each copy's p_c must
    equal the instance's own forward with that copy's edge weights."""
    from dig.tracks.xgraph.explainers import _probability_of_weights, class_probability

    if task == "node":
        model, data, items = build_gcn(10, 2).eval(), tree_cycles(0), np.array([600])
    else:
        model, data, items = build_gin(10, 2).eval(), ba_2motifs(0, graphs=4), np.array([1])
    instance = build_instances(data, items, model)[0]
    weights = torch.rand(5, instance.num_edges, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        batched = _probability_of_weights(model, instance)(weights)
        single = torch.stack([class_probability(model, instance, w) for w in weights])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-6)


BROKEN_EXPLAINERS = """
import torch
from dig.plugins import hookimpl
from dig.tracks.xgraph.protocol import Explanation

def raising():
    def explain(model, instance, seed):
        raise RuntimeError("this explainer always fails")
    return explain

def wrong_size():
    def explain(model, instance, seed):
        return Explanation(torch.ones(instance.num_edges + 1), None, instance.target, instance.label)
    return explain

@hookimpl
def dig_register(registry):
    registry.add_explainer("raising", raising, track="xgraph", summary="raises")
    registry.add_explainer("wrong-size", wrong_size, track="xgraph", summary="a mask one edge too long")
"""


def test_a_broken_explainer_plugin_fails_only_its_own_jobs(tmp_path):
    import csv

    from conftest import make_plugin_dist, run_dig

    site = make_plugin_dist(tmp_path / "site", "broken-explainers", "broken", "broken_explainers", BROKEN_EXPLAINERS)
    out = run_dig("bench", "--track", "xgraph", "--datasets", "ba-2motifs", "--models", "raising,wrong-size,degree",
                  "--seeds", "0", "--budget", "smoke", "--quiet", "--out", str(tmp_path / "out"), extra_path=site)
    assert out.returncode != 0  # failures are reported in the exit status
    with open(tmp_path / "out" / "xgraph.csv", newline="") as handle:
        status = {(r["model"], r["status"], r["reason"]) for r in csv.DictReader(handle)}
    reasons = {model: reason for model, state, reason in status if state == "failed"}
    assert "this explainer always fails" in reasons["raising"]
    assert "returned edge_mask of shape" in reasons["wrong-size"] and "degree" not in reasons
    assert any(model == "degree" and state == "ok" for model, state, _ in status)


def test_gnn_training_stops_at_perfect_validation_accuracy(monkeypatch):
    """Ties keep the earlier epoch, so once validation accuracy is 1.0 no later epoch can be selected: training
    stops there instead of running the remaining epochs."""
    from dig.tracks.xgraph import track

    data = ba_2motifs(0, graphs=60)
    order = np.random.RandomState(0).permutation(60)
    split = {"train": order[:40], "valid": order[40:50], "test": order[50:]}
    steps = []
    step = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: (steps.append(1), step(self, *a, **k))[1])
    _, accuracy = track.train_gnn(data, split, seed=0, epochs=100, lr=0.005)
    batches_per_epoch = -(-40 // track.GRAPH_BATCH)
    assert accuracy["valid"] == 1.0
    assert 0 < len(steps) < 100 * batches_per_epoch and len(steps) % batches_per_epoch == 0
