"""dig.nn layers give PyG's outputs for the same weights and graph; the samplers keep their contracts."""

import warnings

import pytest
import torch

from dig.nn import GATConv, GCNConv, GINConv, LadiesSampler, NeighborSampler, SAGEConv, SGConv, gcn_norm
from dig.ops import CSRGraph, spmm

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import torch_geometric.nn as pyg

N, F_IN, F_OUT = 40, 8, 6


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, N, (2, 200), generator=g)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]  # PyG's layers add their own self loops
    x = torch.randn(N, F_IN, generator=g)
    graph, _ = CSRGraph.from_edge_index(edge_index, N)
    return edge_index, x, graph


def _copy(ours, theirs, mapping):
    with torch.no_grad():
        for mine, other in mapping.items():
            ours.get_parameter(mine).copy_(theirs.get_parameter(other))


def _check(ours, theirs, x, graph, edge_index):
    out, ref = ours(x, graph), theirs(x, edge_index)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    out.sum().backward()
    ref.sum().backward()
    for name, parameter in ours.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_gcn_matches_pyg(data):
    edge_index, x, graph = data
    theirs = pyg.GCNConv(F_IN, F_OUT)
    torch.nn.init.normal_(theirs.bias)
    ours = GCNConv(F_IN, F_OUT)
    _copy(ours, theirs, {"lin.weight": "lin.weight", "bias": "bias"})
    _check(ours, theirs, x, graph, edge_index)


def test_gcn_normalisation_is_cached_on_the_graph(data):
    _, _, graph = data
    assert gcn_norm(graph) is gcn_norm(graph)


def test_sgc_matches_pyg(data):
    edge_index, x, graph = data
    theirs, ours = pyg.SGConv(F_IN, F_OUT, K=3), SGConv(F_IN, F_OUT, K=3, cached=True)
    _copy(ours, theirs, {"lin.weight": "lin.weight", "lin.bias": "lin.bias"})
    _check(ours, theirs, x, graph, edge_index)
    torch.testing.assert_close(ours(x * 0, graph), theirs(x, edge_index), atol=1e-5, rtol=1e-5)  # cached Â^K X


def test_gin_matches_pyg(data):
    edge_index, x, graph = data
    mlp = torch.nn.Sequential(torch.nn.Linear(F_IN, 16), torch.nn.ReLU(), torch.nn.Linear(16, F_OUT))
    theirs = pyg.GINConv(mlp, eps=0.3, train_eps=True)
    ours = GINConv(mlp, eps=0.3, train_eps=True)
    _check(ours, theirs, x, graph, edge_index)


@pytest.mark.parametrize("aggr", ["mean", "max"])
def test_sage_matches_pyg(data, aggr):
    edge_index, x, graph = data
    theirs, ours = pyg.SAGEConv(F_IN, F_OUT, aggr=aggr), SAGEConv(F_IN, F_OUT, aggr=aggr)
    _copy(ours, theirs, {"lin_l.weight": "lin_l.weight", "lin_l.bias": "lin_l.bias", "lin_r.weight": "lin_r.weight"})
    _check(ours, theirs, x, graph, edge_index)


@pytest.mark.parametrize("concat", [True, False])
def test_gat_matches_pyg(data, concat):
    edge_index, x, graph = data
    theirs = pyg.GATConv(F_IN, F_OUT, heads=3, concat=concat)
    torch.nn.init.normal_(theirs.bias)
    ours = GATConv(F_IN, F_OUT, heads=3, concat=concat)
    _copy(ours, theirs, {"lin.weight": "lin.weight", "att_src": "att_src", "att_dst": "att_dst", "bias": "bias"})
    _check(ours, theirs, x, graph, edge_index)


def test_neighbor_sampler_fanout_and_uniformity(data):
    edge_index, x, graph = data
    sampler = NeighborSampler(graph, [3, 2], generator=torch.Generator().manual_seed(0))
    seeds = torch.tensor([0, 5, 7])
    blocks = sampler.sample(seeds)
    assert len(blocks) == 2 and torch.equal(blocks[-1].dst_nodes, seeds)
    original = set(zip(edge_index[0].tolist(), edge_index[1].tolist(), strict=True))
    for block, fanout in zip(blocks, [3, 2], strict=True):
        degree = graph.in_degree()[block.dst_nodes]
        assert torch.equal(block.graph.in_degree(), degree.clamp(max=fanout))
        for dst, src in zip(block.graph.row.tolist(), block.graph.col.tolist(), strict=True):
            assert (int(block.src_nodes[src]), int(block.dst_nodes[dst])) in original
        assert torch.equal(blocks[0].dst_nodes, blocks[0].src_nodes[: blocks[0].graph.num_dst_nodes])
    assert torch.equal(blocks[1].src_nodes, blocks[0].dst_nodes)
    # uniform: over many draws each in-neighbour of a high-degree node is kept about equally often
    hub = int(torch.argmax(graph.in_degree()))
    counts = torch.zeros(N)
    one_layer = NeighborSampler(graph, [2], generator=torch.Generator().manual_seed(1))
    for _ in range(3000):
        block = one_layer.sample(torch.tensor([hub]))[0]
        counts.index_add_(0, block.src_nodes[block.graph.col], torch.ones(block.graph.num_edges))
    neighbours = graph.col[graph.rowptr[hub]: graph.rowptr[hub + 1]]
    expected = 3000 * 2 / neighbours.numel()
    per_edge = counts[neighbours.unique()] / torch.bincount(neighbours)[neighbours.unique()]
    assert (per_edge - expected).abs().max() < 0.15 * expected


def test_sampled_blocks_run_through_sage(data):
    _, x, graph = data
    blocks = NeighborSampler(graph, [4, 4], generator=torch.Generator().manual_seed(2)).sample(torch.arange(5))
    layers = [SAGEConv(F_IN, 16), SAGEConv(16, F_OUT)]
    h = x[blocks[0].src_nodes]
    for block, layer in zip(blocks, layers, strict=True):
        h = layer(h, block.graph)
    assert h.shape == (5, F_OUT)


def test_ladies_sampler_weights_and_importance(data):
    edge_index, x, graph = data
    target, weight = gcn_norm(graph)
    sampler = LadiesSampler(target, weight, [10, 10], generator=torch.Generator().manual_seed(0))
    seeds = torch.tensor([1, 2, 3, 4])
    blocks = sampler.sample(seeds)
    assert torch.equal(blocks[-1].dst_nodes, seeds)
    for block in blocks:
        assert block.src_nodes.numel() <= block.graph.num_dst_nodes + 10
        row_sums = torch.zeros(block.graph.num_dst_nodes).index_add_(0, block.graph.row, block.edge_weight)
        expected = torch.zeros(N).index_add_(0, target.row, weight)[block.dst_nodes]
        torch.testing.assert_close(row_sums, expected)
    h = spmm(blocks[-1].graph, x[blocks[-1].src_nodes], blocks[-1].edge_weight)
    assert h.shape == (4, F_IN)
    # importance: nodes with a larger squared column norm towards the seeds are drawn more often
    one = LadiesSampler(target, weight, [3], generator=torch.Generator().manual_seed(1))
    hits = torch.zeros(N)
    for _ in range(400):
        hits[one.sample(seeds)[0].src_nodes[4:]] += 1
    edges = torch.isin(target.row, seeds)
    prob = torch.zeros(N).index_add_(0, target.col[edges], weight[edges] ** 2)
    prob[seeds] = 0
    top, bottom = prob.argsort(descending=True)[:3], prob.argsort(descending=True)[prob.count_nonzero() - 3: prob.count_nonzero()]
    assert hits[top].sum() > hits[bottom].sum()


@pytest.fixture(scope="module")
def looped():
    """A graph that already has self loops on some nodes (node 3 twice), as real graphs may."""
    g = torch.Generator().manual_seed(1)
    edge_index = torch.randint(0, N, (2, 200), generator=g)
    loops = torch.tensor([[0, 3, 3, 7, 11], [0, 3, 3, 7, 11]])
    edge_index = torch.cat([edge_index, loops], dim=1)
    x = torch.randn(N, F_IN, generator=g)
    graph, _ = CSRGraph.from_edge_index(edge_index, N)
    return edge_index, x, graph


def test_self_loops_are_added_only_where_missing(looped):
    from dig.nn import with_self_loops

    edge_index, _, graph = looped
    target = with_self_loops(graph)
    row, col = target.row, target.col
    assert bool((row[1:] >= row[:-1]).all()) and torch.equal(target.rowptr[1:] - target.rowptr[:-1], target.in_degree())
    assert torch.equal(torch.bincount(row[row == col], minlength=N), torch.ones(N, dtype=torch.long))
    off = edge_index[:, edge_index[0] != edge_index[1]]
    expected = sorted(zip(off[0].tolist(), off[1].tolist(), strict=True)) + [(i, i) for i in range(N)]
    assert sorted(zip(col.tolist(), row.tolist(), strict=True)) == sorted(expected)


@pytest.mark.parametrize("layer", ["gcn", "sgc", "gat"])
def test_layers_match_pyg_on_a_graph_with_self_loops(looped, layer):
    edge_index, x, graph = looped
    if layer == "gcn":
        theirs, ours = pyg.GCNConv(F_IN, F_OUT), GCNConv(F_IN, F_OUT)
        _copy(ours, theirs, {"lin.weight": "lin.weight", "bias": "bias"})
    elif layer == "sgc":
        theirs, ours = pyg.SGConv(F_IN, F_OUT, K=2), SGConv(F_IN, F_OUT, K=2)
        _copy(ours, theirs, {"lin.weight": "lin.weight", "lin.bias": "lin.bias"})
    else:
        theirs, ours = pyg.GATConv(F_IN, F_OUT, heads=2), GATConv(F_IN, F_OUT, heads=2)
        _copy(ours, theirs, {"lin.weight": "lin.weight", "att_src": "att_src", "att_dst": "att_dst", "bias": "bias"})
    _check(ours, theirs, x, graph, edge_index)


@pytest.mark.parametrize("shape", [(8, 32), (42, 8)])
def test_linear_equals_torch_linear_to_second_order(shape):
    """dig.nn.linear.Linear changes only how the weight gradient is multiplied out, never a value."""
    from dig.nn.linear import Linear

    in_features, out_features = shape
    ours, reference = Linear(in_features, out_features).double(), torch.nn.Linear(in_features, out_features).double()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(50, in_features, dtype=torch.float64, requires_grad=True)
    first = {}
    for name, layer in (("ours", ours), ("reference", reference)):
        out = layer(x).tanh().pow(2).sum()
        grads = torch.autograd.grad(out, [x, layer.weight, layer.bias], create_graph=True)
        second = torch.autograd.grad(grads[0].sum() + grads[1].pow(2).sum(), [x, layer.weight])
        first[name] = [g.detach() for g in (*grads, *second)]
    for mine, theirs in zip(first["ours"], first["reference"], strict=True):
        torch.testing.assert_close(mine, theirs)
    assert torch.autograd.gradcheck(ours, (x,)) and torch.autograd.gradgradcheck(ours, (x,))


@pytest.mark.parametrize("layer", ["gcn", "gin"])
def test_edge_weights_multiply_messages_as_pyg_explain_masks_do(data, layer):
    """An explanation mask on the edges gives PyG's output with the same mask set by its explain module."""
    from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

    edge_index, x, _ = data
    graph, perm = CSRGraph.from_edge_index(edge_index, N)
    mask = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(3))
    if layer == "gcn":
        theirs, ours = pyg.GCNConv(F_IN, F_OUT), GCNConv(F_IN, F_OUT)
        _copy(ours, theirs, {"lin.weight": "lin.weight", "bias": "bias"})
    else:
        mlp = torch.nn.Sequential(torch.nn.Linear(F_IN, F_OUT), torch.nn.ReLU(), torch.nn.Linear(F_OUT, F_OUT))
        theirs, ours = pyg.GINConv(mlp), GINConv(mlp)
    set_masks(theirs, mask, edge_index, apply_sigmoid=False)
    reference = theirs(x, edge_index)
    clear_masks(theirs)
    out = ours(x, graph, edge_weight=mask[perm])
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out, ours(x, graph), atol=1e-3)


@pytest.mark.parametrize("normalize", [True, False])
def test_split_gcn_operator_equals_the_looped_graph_operator(looped, normalize):
    """GCNConv propagates with the off-diagonal edges plus a per-node diagonal (``gcn_split_norm``) instead of
    building the looped graph; both must be the same dense operator, also where loops already exist."""
    from dig.nn import with_self_loops
    from dig.nn.conv import gcn_split_norm

    _, _, graph = looped
    target = with_self_loops(graph)
    dense_looped = torch.zeros(N, N)
    looped_weight = gcn_norm(graph)[1] if normalize else torch.ones(target.num_edges)
    dense_looped.index_put_((target.row, target.col), looped_weight, accumulate=True)
    weight, loop_weight = gcn_split_norm(graph, normalize)
    dense_split = torch.diag(loop_weight).index_put_((graph.row, graph.col), weight, accumulate=True)
    torch.testing.assert_close(dense_split, dense_looped)
    assert gcn_split_norm(graph, normalize) is gcn_split_norm(graph, normalize)
