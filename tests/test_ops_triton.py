"""Every Triton kernel against the torch path, under TRITON_INTERPRET=1 on CPU tensors (or on a GPU)."""

import pytest
import torch

from dig.ops import CSRGraph, _triton, edge_softmax, gather_mul_scatter, scatter, segment, spmm

pytestmark = pytest.mark.skipif(not _triton.AVAILABLE, reason="triton is not installed")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture
def triton_backend(monkeypatch):
    monkeypatch.setenv("DIG_OPS_BACKEND", "triton")


def both(fn):
    """Run ``fn`` on the torch path and on the Triton path; return both results."""
    import os

    previous = os.environ.pop("DIG_OPS_BACKEND", None)
    reference = fn()
    os.environ["DIG_OPS_BACKEND"] = "triton"
    try:
        return reference, fn()
    finally:
        os.environ.pop("DIG_OPS_BACKEND")
        if previous is not None:
            os.environ["DIG_OPS_BACKEND"] = previous


GRAPHS = {
    # name: (edge_index, num_nodes)
    "random": (torch.randint(0, 7, (2, 30), generator=torch.Generator().manual_seed(0)), 7),
    "empty_rows_isolated": (torch.tensor([[0, 1, 1, 3], [2, 2, 0, 2]]), 6),
    "single_node_self_loop": (torch.tensor([[0], [0]]), 1),
    "duplicate_edges": (torch.tensor([[1, 1, 1, 0], [0, 0, 0, 1]]), 2),
    "no_edges": (torch.zeros(2, 0, dtype=torch.long), 3),
    "long_row": (torch.stack([torch.arange(70) % 5, torch.zeros(70, dtype=torch.long)]), 5),  # > one edge block
}


def _graph(name):
    edge_index, n = GRAPHS[name]
    graph, _ = CSRGraph.from_edge_index(edge_index.to(DEVICE), n)
    return graph, n


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_aggregation_kernels_match_torch(name, dtype):
    graph, n = _graph(name)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 5, generator=g, dtype=dtype).to(DEVICE)
    w = torch.randn(graph.num_edges, generator=g, dtype=dtype).to(DEVICE)
    w_vec = torch.randn(graph.num_edges, 5, generator=g, dtype=dtype).to(DEVICE)
    for reduce in ("sum", "mean", "max", "min"):
        ref, out = both(lambda: spmm(graph, x, None, reduce))  # noqa: B023
        torch.testing.assert_close(out, ref, msg=f"spmm {reduce}")
    ref, out = both(lambda: spmm(graph, x, w))
    torch.testing.assert_close(out, ref)
    ref, out = both(lambda: gather_mul_scatter(graph, x, w_vec))
    torch.testing.assert_close(out, ref)


def test_hub_rows_take_the_skewed_launch_shape_and_stay_exact():
    """A row past SKEWED_DEGREE (a hub) switches to narrow feature blocks and long edge blocks; F = 40 leaves
    masked lanes in the second feature block and the hub's last edge block is partial."""
    hub = _triton.SKEWED_DEGREE + 37
    src = torch.cat([torch.arange(hub) % 6, torch.tensor([1, 2, 3])])
    dst = torch.cat([torch.full((hub,), 4), torch.tensor([0, 0, 5])])
    graph, _ = CSRGraph.from_edge_index(torch.stack([src, dst]).to(DEVICE), 6)
    assert _triton._max_degree(graph.rowptr, graph.num_edges) == hub
    assert _triton.launch_shape(40, hub) == (64, 32, 1)
    assert _triton.launch_shape(40, 3) == (16, 64, 1)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 40, generator=g, dtype=torch.float64).to(DEVICE)
    w_vec = torch.randn(graph.num_edges, 40, generator=g, dtype=torch.float64).to(DEVICE)
    for reduce in ("sum", "max"):
        ref, out = both(lambda: spmm(graph, x, None, reduce))  # noqa: B023
        torch.testing.assert_close(out, ref, msg=f"hub spmm {reduce}")
    ref, out = both(lambda: gather_mul_scatter(graph, x, w_vec))
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_segment_kernel_with_empty_segments_and_ties(reduce):
    src = torch.tensor([[1.0, 2.0], [3.0, 2.0], [0.5, -1.0], [7.0, 7.0], [7.0, 1.0]], dtype=torch.float64).to(DEVICE)
    ptr = torch.tensor([0, 2, 2, 3, 5]).to(DEVICE)
    ref, out = both(lambda: segment(src, ptr, reduce))
    torch.testing.assert_close(out, ref)
    src.requires_grad_(True)
    grads = both(lambda: torch.autograd.grad(segment(src, ptr, reduce).sum(), src)[0])
    torch.testing.assert_close(grads[1], grads[0])
    if reduce == "max":  # the tie at rows 3 and 4 (value 7) sends the gradient to the first one only
        assert grads[1][3, 0] == 1 and grads[1][4, 0] == 0


def test_edge_softmax_kernel_multi_head():
    graph, n = _graph("random")
    scores = torch.randn(graph.num_edges, 3, generator=torch.Generator().manual_seed(2)).to(DEVICE) * 5
    ref, out = both(lambda: edge_softmax(graph, scores))
    torch.testing.assert_close(out, ref)
    sums = torch.zeros(n, 3, device=DEVICE).index_add_(0, graph.row, out)
    has_edges = graph.in_degree() > 0
    torch.testing.assert_close(sums[has_edges], torch.ones_like(sums[has_edges]))


def test_noncontiguous_inputs(triton_backend):
    graph, n = _graph("random")
    x = torch.randn(5, n, dtype=torch.float64).to(DEVICE).t()
    w = torch.randn(5, graph.num_edges, dtype=torch.float64).to(DEVICE).t()
    assert not x.is_contiguous() and not w.is_contiguous()
    torch.testing.assert_close(gather_mul_scatter(graph, x, w), gather_mul_scatter(graph, x.contiguous(), w.contiguous()))


def test_gradcheck_through_kernels(triton_backend):
    graph, n = _graph("empty_rows_isolated")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64).to(DEVICE).requires_grad_()
    w = torch.randn(graph.num_edges, generator=g, dtype=torch.float64).to(DEVICE).requires_grad_()
    w_vec = torch.randn(graph.num_edges, 3, generator=g, dtype=torch.float64).to(DEVICE).requires_grad_()
    s = torch.randn(graph.num_edges, 2, generator=g, dtype=torch.float64).to(DEVICE).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: spmm(graph, a, b), (x, w))
    assert torch.autograd.gradcheck(lambda a, b: gather_mul_scatter(graph, a, b), (x, w_vec))
    assert torch.autograd.gradcheck(lambda a: spmm(graph, a, None, "mean"), (x,))
    assert torch.autograd.gradcheck(lambda a: edge_softmax(graph, a), (s,))
    # second order (forces training): the backward runs through the ops again, so it has its own gradient
    assert torch.autograd.gradgradcheck(lambda a, b: spmm(graph, a, b), (x, w))
    assert torch.autograd.gradgradcheck(lambda a, b: gather_mul_scatter(graph, a, b), (x, w_vec))


def test_sddmm_kernel_matches_torch():
    graph, n = _graph("random")
    a = torch.randn(n, 4, dtype=torch.float64).to(DEVICE)
    b = torch.randn(n, 4, dtype=torch.float64).to(DEVICE)
    expected = (a[graph.row] * b[graph.col]).sum(-1)
    torch.testing.assert_close(_triton.sddmm(graph.row, graph.col, a, b), expected)


def test_out_of_range_indices_rejected_before_launch(triton_backend):
    with pytest.raises(IndexError, match="must lie in"):
        CSRGraph.from_edge_index(torch.tensor([[0, 9], [1, 0]]), num_nodes=3)
    with pytest.raises(IndexError, match="index values must lie in"):
        scatter(torch.randn(3, 2), torch.tensor([0, 1, 5]), num_segments=3)
    graph, _ = _graph("random")
    with pytest.raises(ValueError, match="source nodes"):
        spmm(graph, torch.randn(3, 2))


def test_cpu_tensors_on_the_triton_backend_need_the_interpreter(triton_backend, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    edge_index, n = GRAPHS["random"]
    graph, _ = CSRGraph.from_edge_index(edge_index, n)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        spmm(graph, torch.randn(n, 2))


def test_scatter_unsorted_matches_index_add():
    src = torch.randn(9, 2, dtype=torch.float64).to(DEVICE)
    index = torch.tensor([2, 0, 2, 1, 0, 2, 4, 4, 0]).to(DEVICE)
    expected = torch.zeros(5, 2, dtype=torch.float64, device=DEVICE).index_add_(0, index, src)
    ref, out = both(lambda: scatter(src, index, 5))
    torch.testing.assert_close(ref, expected)
    torch.testing.assert_close(out, expected)


def test_custom_ops_trace_under_torch_compile():
    graph, n = _graph("random")
    x = torch.randn(n, 4).to(DEVICE)
    w = torch.randn(graph.num_edges, 4).to(DEVICE)

    def model(x, w):
        h = gather_mul_scatter(graph, x, w)
        h = spmm(graph, torch.relu(h), None, "mean")
        return segment(h, torch.tensor([0, 3, n]).to(DEVICE), "max")

    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x, w), model(x, w))
