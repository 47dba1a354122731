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


def _gcn_pair(x):
    theirs = pyg.GCNConv(FEATURES, FEATURES)
    ours = GCNConv(FEATURES, FEATURES)
    with torch.no_grad():
        ours.lin.weight.copy_(theirs.lin.weight)
    return ours, theirs


def test_gcn_forward(setting, compare):
    size, edge_index, x, graph, _ = setting
    ours, theirs = _gcn_pair(x)
    with torch.no_grad():
        ours(x, graph)  # the normalised structure is built once per graph and cached
        compare(lambda: ours(x, graph), lambda: theirs(x, edge_index), label="speedup_vs_pyg_gcn",
                note=f"{size}: GCN forward, target >= 8x")


def test_gcn_forward_backward(setting, compare):
    size, edge_index, x, graph, _ = setting
    ours, theirs = _gcn_pair(x)
    inputs = x.clone().requires_grad_(True)

    def step(layer, structure):
        def run():
            layer.zero_grad(set_to_none=True)
            inputs.grad = None
            layer(inputs, structure).sum().backward()
        return run

    compare(step(ours, graph), step(theirs, edge_index), label="speedup_vs_pyg_gcn",
            note=f"{size}: GCN forward+backward, target >= 4x")


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
