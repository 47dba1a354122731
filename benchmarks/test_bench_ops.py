"""CPU benchmarks of dig.ops / dig.nn against PyG and plain torch, on random graphs of two sizes."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import RATIOS, median_seconds

from dig.nn import GCNConv
from dig.ops import CSRGraph, gather_mul_scatter, spmm

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import torch_geometric.nn as pyg

SIZES = {"small": (10_000, 100_000), "large": (100_000, 1_000_000)}
FEATURES = 64


def random_graph(num_nodes: int, num_edges: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    x = torch.randn(num_nodes, FEATURES, generator=g)
    graph, perm = CSRGraph.from_edge_index(edge_index, num_nodes)
    return edge_index, x, graph, perm


@pytest.fixture(scope="module", params=list(SIZES))
def setting(request):
    return (request.param, *random_graph(*SIZES[request.param]))


def _gcn_layers():
    """Ours and PyG's GCN with the same weights: PyG cached (its normalisation kept, as ours is on the graph)
    and PyG uncached (normalisation recomputed on every call)."""
    cached, uncached = pyg.GCNConv(FEATURES, FEATURES, cached=True), pyg.GCNConv(FEATURES, FEATURES)
    ours = GCNConv(FEATURES, FEATURES)
    with torch.no_grad():
        uncached.lin.weight.copy_(cached.lin.weight)
        ours.lin.weight.copy_(cached.lin.weight)
    return ours, cached, uncached


def _sparse_adjacency(edge_index, num_nodes):
    """PyG's sparse-tensor input: the transposed adjacency as a torch CSR tensor (adj_t[i, j] = 1 for j -> i)."""
    values = torch.ones(edge_index.size(1))
    return torch.sparse_coo_tensor(edge_index.flip(0), values, (num_nodes, num_nodes)).coalesce().to_sparse_csr()


def test_gcn_forward_warm(setting, compare):
    """Warm: the graph's normalised structure is built once and reused, by ours and by PyG(cached=True),
    the latter both with edge_index and with its sparse-tensor input (its fastest CPU path). A sparse tensor
    holds no duplicate edges and PyG sets its diagonal, so that pairing runs on the simple graph (duplicates
    and self loops removed)."""
    size, edge_index, x, graph, _ = setting
    ours, cached, _ = _gcn_layers()
    cached_sparse = pyg.GCNConv(FEATURES, FEATURES, cached=True)
    cached_sparse.load_state_dict(cached.state_dict())
    simple = torch.unique(edge_index, dim=1)
    simple = simple[:, simple[0] != simple[1]]
    simple_graph, _ = CSRGraph.from_edge_index(simple, x.size(0))
    adj_t = _sparse_adjacency(simple, x.size(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x, graph), cached(x, edge_index), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ours(x, simple_graph), cached_sparse(x, adj_t), atol=1e-4, rtol=1e-4)
        compare(lambda: ours(x, graph), lambda: cached(x, edge_index), label="speedup_vs_pyg_cached",
                note=f"{size}: GCN forward, both cached, PyG edge_index")
        sparse_s = median_seconds(lambda: cached_sparse(x, adj_t))
        RATIOS.append((f"test_gcn_forward_warm[{size}]", "speedup_vs_pyg_sparse",
                       sparse_s / median_seconds(lambda: ours(x, simple_graph)),
                       f"{size}: GCN forward, both cached, PyG torch.sparse CSR adj_t (simple graph)"))


def test_gcn_forward_cold(setting, compare):
    """Cold: a new graph every call (mini-batches of new graphs): ours builds the CSR graph and its
    normalisation from edge_index, PyG(cached=False) normalises edge_index."""
    size, edge_index, x, _, _ = setting
    ours, _, uncached = _gcn_layers()
    num_nodes = x.size(0)

    def ours_cold():
        graph, _ = CSRGraph.from_edge_index(edge_index, num_nodes)
        return ours(x, graph)

    with torch.no_grad():
        torch.testing.assert_close(ours_cold(), uncached(x, edge_index), atol=1e-4, rtol=1e-4)
        compare(ours_cold, lambda: uncached(x, edge_index), label="speedup_vs_pyg_uncached",
                note=f"{size}: GCN forward, graph built every call")


@pytest.mark.parametrize("path", ["warm", "cold"])
def test_gcn_forward_backward(setting, compare, path):
    size, edge_index, x, graph, _ = setting
    ours, cached, uncached = _gcn_layers()
    inputs = x.clone().requires_grad_(True)
    num_nodes = x.size(0)

    def step(layer, structure):
        def run():
            layer.zero_grad(set_to_none=True)
            inputs.grad = None
            target = structure() if callable(structure) else structure
            layer(inputs, target).sum().backward()
        return run

    if path == "warm":
        compare(step(ours, graph), step(cached, edge_index), label="speedup_vs_pyg_cached",
                note=f"{size}: GCN forward+backward, both cached")
    else:
        compare(step(ours, lambda: CSRGraph.from_edge_index(edge_index, num_nodes)[0]), step(uncached, edge_index),
                label="speedup_vs_pyg_uncached", note=f"{size}: GCN forward+backward, graph built every call")


def test_spmm_vs_index_add_and_bandwidth(setting, compare):
    size, edge_index, x, graph, perm = setting
    weight = torch.rand(graph.num_edges)
    src, dst = edge_index[0], edge_index[1]
    w_orig = torch.empty_like(weight)
    w_orig[perm] = weight

    def index_add():
        return torch.zeros_like(x).index_add_(0, dst, x.index_select(0, src) * w_orig.unsqueeze(-1))

    torch.testing.assert_close(spmm(graph, x, weight), index_add(), atol=1e-4, rtol=1e-4)
    ours_s, _, _ = compare(lambda: spmm(graph, x, weight), index_add, label="speedup_vs_index_add",
                           note=f"{size}: weighted SpMM")
    # bytes an SpMM moves if every gathered row of x comes from memory: rows, indices, weights, the output
    # (cache hits make the effective figure higher than what DRAM delivers)
    moved = graph.num_edges * (FEATURES * 4 + 8 + 4) + graph.rowptr.numel() * 8 + x.numel() * 4
    big, target = torch.randn(32_000_000), torch.empty(32_000_000)
    copy_s = median_seconds(lambda: target.copy_(big), rounds=5)
    copy_gbs = 2 * big.numel() * 4 / copy_s / 1e9
    spmm_gbs = moved / ours_s / 1e9
    RATIOS.append((f"test_spmm_bandwidth[{size}]", "fraction_of_copy_bw", spmm_gbs / copy_gbs,
                   f"{size}: SpMM {spmm_gbs:.1f} GB/s vs copy {copy_gbs:.1f} GB/s, target >= 0.30"))


def test_fused_cfconv_vs_naive(setting, compare):
    size, edge_index, x, graph, _ = setting
    filters = torch.randn(graph.num_edges, FEATURES)
    row, col = graph.row, graph.col

    def naive():
        return torch.zeros_like(x).index_add_(0, row, x[col] * filters)

    torch.testing.assert_close(gather_mul_scatter(graph, x, filters), naive(), atol=1e-4, rtol=1e-4)
    compare(lambda: gather_mul_scatter(graph, x, filters), naive, label="speedup_vs_naive",
            note=f"{size}: cfconv gather-multiply-scatter forward")


def test_fused_cfconv_forward_backward(setting, compare):
    size, edge_index, x, graph, _ = setting
    xs = x.clone().requires_grad_(True)
    filters = torch.randn(graph.num_edges, FEATURES, requires_grad=True)
    row, col = graph.row, graph.col

    def ours():
        xs.grad = filters.grad = None
        gather_mul_scatter(graph, xs, filters).sum().backward()

    def naive():
        xs.grad = filters.grad = None
        torch.zeros_like(x).index_add_(0, row, xs[col] * filters).sum().backward()

    compare(ours, naive, rounds=3, label="speedup_vs_naive", note=f"{size}: cfconv forward+backward")
