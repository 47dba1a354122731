"""GPU benchmarks of the Triton kernels against the torch-scatter-equivalent path (index_add_) and cuSPARSE
(torch.sparse.mm on CUDA). Skipped without a GPU: ``python -m pytest benchmarks -k gpu --benchmark-only``."""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import RATIOS, median_seconds

from dig.ops import CSRGraph, _triton, edge_softmax, gather_mul_scatter, segment, spmm
from dig.ops._torch import csr_tensor
from dig.ops._torch import edge_softmax as torch_edge_softmax

pytestmark = pytest.mark.skipif(not (torch.cuda.is_available() and _triton.AVAILABLE), reason="needs a CUDA GPU and Triton")

SIZES = {"gpu_small": (100_000, 1_000_000), "gpu_large": (1_000_000, 20_000_000)}


def _synced(fn):
    """Kernels launch asynchronously: a timing without a synchronize measures only the launch."""
    def run():
        out = fn()
        torch.cuda.synchronize()
        return out
    return run


def _sync_median(fn, rounds=20):
    return median_seconds(_synced(fn), rounds=rounds, warmup=3)


@pytest.fixture(scope="module", params=list(SIZES))
def gpu_graph(request):
    n, e = SIZES[request.param]
    g = torch.Generator(device="cuda").manual_seed(0)
    edge_index = torch.randint(0, n, (2, e), device="cuda", generator=g)
    graph, _ = CSRGraph.from_edge_index(edge_index, n)
    return request.param, graph


@pytest.mark.parametrize("features", [32, 128])
def test_gpu_spmm(gpu_graph, features, compare):
    size, graph = gpu_graph
    x = torch.randn(graph.num_src_nodes, features, device="cuda")
    w = torch.rand(graph.num_edges, device="cuda")
    cusparse = csr_tensor(graph.rowptr, graph.col, w, (graph.num_dst_nodes, graph.num_src_nodes))
    row = graph.row

    def scatter_path():
        return torch.zeros_like(x).index_add_(0, row, x[graph.col] * w[:, None])

    kernel = lambda: spmm(graph, x, w)  # noqa: E731
    torch.testing.assert_close(kernel(), torch.sparse.mm(cusparse, x), atol=1e-3, rtol=1e-3)
    ours_s = _sync_median(kernel)
    RATIOS.append((f"gpu_spmm[{size},F={features}]", "vs_index_add", _sync_median(scatter_path) / ours_s, ""))
    RATIOS.append((f"gpu_spmm[{size},F={features}]", "vs_cusparse", _sync_median(lambda: torch.sparse.mm(cusparse, x)) / ours_s, ""))
    compare(_synced(kernel), _synced(scatter_path), rounds=20, label="speedup_vs_index_add")


def test_gpu_fused_cfconv(gpu_graph, compare):
    size, graph = gpu_graph
    x = torch.randn(graph.num_src_nodes, 64, device="cuda")
    w = torch.randn(graph.num_edges, 64, device="cuda")
    row = graph.row
    kernel = lambda: gather_mul_scatter(graph, x, w)  # noqa: E731
    naive = lambda: torch.zeros_like(x).index_add_(0, row, x[graph.col] * w)  # noqa: E731
    torch.testing.assert_close(kernel(), naive(), atol=1e-3, rtol=1e-3)
    RATIOS.append((f"gpu_cfconv[{size}]", "vs_naive", _sync_median(naive) / _sync_median(kernel), ""))
    compare(_synced(kernel), _synced(naive), rounds=20, label="speedup_vs_naive")


def test_gpu_segment_max_and_softmax(gpu_graph, compare):
    size, graph = gpu_graph
    scores = torch.randn(graph.num_edges, 4, device="cuda")
    row = graph.row
    reference = lambda: torch.zeros(graph.num_dst_nodes, 4, device="cuda").scatter_reduce_(  # noqa: E731
        0, row[:, None].expand(-1, 4), scores, "amax", include_self=False)
    RATIOS.append((f"gpu_segment_max[{size}]", "vs_scatter_reduce",
                   _sync_median(reference) / _sync_median(lambda: segment(scores, graph.rowptr, "max")), ""))
    compare(_synced(lambda: edge_softmax(graph, scores)), _synced(lambda: torch_edge_softmax(graph.rowptr, scores)),
            rounds=20,
            label="vs_torch_segment_softmax")


@pytest.mark.parametrize("features", [32, 128, 256])
def test_gpu_aggregate_launch_shapes(gpu_graph, features, benchmark):
    """Sweep (BLOCK_E, BLOCK_F, num_warps) of the CSR aggregation; report the chosen shape's time over the best."""
    size, graph = gpu_graph
    x = torch.randn(graph.num_src_nodes, features, device="cuda")
    w = torch.rand(graph.num_edges, device="cuda")
    args = (graph.rowptr, graph.col, x, w, graph.num_dst_nodes)
    chosen = _triton.launch_shape(features, int(graph.rowptr.diff().max()))
    block_fs = [b for b in (16, 32, 64, 128, 256) if b <= max(16, 1 << (features - 1).bit_length())]
    times = {}
    for shape in itertools.product((4, 8, 16, 32, 64), block_fs, (1, 2, 4)):
        times[shape] = _sync_median(lambda: _triton.aggregate(*args, shape=shape), rounds=10)  # noqa: B023
    chosen_s = times.get(chosen) or _sync_median(lambda: _triton.aggregate(*args, shape=chosen), rounds=10)
    best = min(times, key=times.get)
    RATIOS.append((f"gpu_aggregate_shape[{size},F={features}]", f"chosen{chosen}/best{best}", chosen_s / times[best],
                   f"chosen {chosen_s * 1e6:.0f} us, best {times[best] * 1e6:.0f} us", "x slower"))
    benchmark.extra_info.update({str(k): v for k, v in times.items()})
    benchmark.pedantic(_synced(lambda: _triton.aggregate(*args)), rounds=10, warmup_rounds=1, iterations=1)
