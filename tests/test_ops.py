"""dig.ops on the CPU torch path: against plain references, gradients, input validation."""

import pytest
import torch

from dig.ops import CSRGraph, gather_mul_scatter, radius_graph, scatter, segment


def _graph(num_nodes=6, num_edges=15, seed=0):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    return edge_index, *CSRGraph.from_edge_index(edge_index, num_nodes)


def test_csr_from_edge_index_sorts_by_destination_and_keeps_isolated_nodes():
    edge_index = torch.tensor([[0, 2, 1, 2], [3, 0, 3, 0]])  # node 1, 2 receive nothing, 4 is isolated
    graph, perm = CSRGraph.from_edge_index(edge_index, num_nodes=5)
    assert graph.rowptr.tolist() == [0, 2, 2, 2, 4, 4]
    assert graph.row.tolist() == [0, 0, 3, 3]
    assert torch.equal(graph.col, edge_index[0][perm])


def test_csr_from_destination_sorted_edges_skips_the_sort_and_gives_the_same_graph():
    edge_index = torch.randint(0, 50, (2, 400), generator=torch.Generator().manual_seed(3))
    graph, perm = CSRGraph.from_edge_index(edge_index, num_nodes=50)
    again, identity = CSRGraph.from_edge_index(edge_index[:, perm], num_nodes=50)
    assert torch.equal(identity, torch.arange(400))
    assert torch.equal(again.rowptr, graph.rowptr) and torch.equal(again.col, graph.col)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weight_shape", ["vector", "scalar", "column"])
def test_gather_mul_scatter_matches_index_add(dtype, weight_shape):
    edge_index, graph, perm = _graph()
    x = torch.randn(6, 5, dtype=dtype)
    w = {"vector": torch.randn(15, 5), "scalar": torch.randn(15), "column": torch.randn(15, 1)}[weight_shape].to(dtype)
    expected = torch.zeros(6, 5, dtype=dtype).index_add_(0, edge_index[1], x[edge_index[0]] * (w if w.dim() == 2 else w[:, None]))
    out = gather_mul_scatter(graph, x, w[perm])
    torch.testing.assert_close(out, expected)


def test_gather_mul_scatter_gradients_first_and_second_order():
    """Second derivatives matter: forces training differentiates -dE/dpos once more."""
    _, graph, _ = _graph()
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    for w in (torch.randn(15, 3, dtype=torch.float64), torch.randn(15, dtype=torch.float64)):
        w.requires_grad_(True)
        assert torch.autograd.gradcheck(lambda a, b: gather_mul_scatter(graph, a, b), (x, w))
        assert torch.autograd.gradgradcheck(lambda a, b: gather_mul_scatter(graph, a, b), (x, w))
    assert torch.autograd.gradgradcheck(lambda a: segment(a, torch.tensor([0, 2, 6]), "mean"), (x,))


def test_gather_mul_scatter_noncontiguous_input():
    _, graph, _ = _graph()
    x = torch.randn(5, 6).t()  # [6, 5], not contiguous
    w = torch.randn(5, 15).t()
    torch.testing.assert_close(gather_mul_scatter(graph, x, w), gather_mul_scatter(graph, x.contiguous(), w.contiguous()))


def test_segment_sum_with_empty_segments_and_gradient():
    src = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    ptr = torch.tensor([0, 2, 2, 5, 5])
    out = segment(src, ptr)
    torch.testing.assert_close(out, torch.stack([src[:2].sum(0), src[:0].sum(0), src[2:].sum(0), src[:0].sum(0)]))
    assert torch.autograd.gradcheck(lambda s: segment(s, ptr), (src,))


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_segment_extreme_without_gradient_equals_the_recorded_path(reduce):
    """Under no_grad max/min skip the argmax search; values (ties, empty segments as 0) must not change."""
    src = torch.tensor([[3.0, -1.0], [3.0, 2.0], [-5.0, 2.0], [0.5, -7.0], [1.0, 1.0]], requires_grad=True)
    ptr = torch.tensor([0, 3, 3, 4, 5, 5])
    recorded = segment(src, ptr, reduce)
    with torch.no_grad():
        plain = segment(src, ptr, reduce)
    torch.testing.assert_close(plain, recorded.detach())
    assert not plain[1].any() and not plain[4].any()
    expected = getattr(torch, "amax" if reduce == "max" else "amin")
    torch.testing.assert_close(plain[0], expected(src[:3].detach(), dim=0))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_scatter_on_a_sorted_index_equals_the_sorting_path(reduce):
    """A batch vector is already grouped: scatter skips the sort; values and gradients equal a shuffled input."""
    g = torch.Generator().manual_seed(0)
    index = torch.tensor([0, 0, 0, 2, 2, 3, 3, 3, 3])
    src = torch.randn(9, 4, dtype=torch.float64, generator=g, requires_grad=True)
    perm = torch.randperm(9, generator=g)
    sorted_out = scatter(src, index, 5, reduce)
    shuffled_out = scatter(src[perm], index[perm], 5, reduce)
    torch.testing.assert_close(sorted_out, shuffled_out)
    weights = torch.randn(5, 4, dtype=torch.float64, generator=g)
    grad_sorted, = torch.autograd.grad((sorted_out * weights).sum(), src)
    grad_shuffled, = torch.autograd.grad((shuffled_out * weights).sum(), src)
    torch.testing.assert_close(grad_sorted, grad_shuffled)
    assert torch.autograd.gradcheck(lambda s: scatter(s, index, 5, reduce), (src,))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_scatter_of_no_rows_gives_zeros_of_the_right_shape(reduce):
    """A batch of graphs without a single edge (e.g. lone atoms) scatters zero messages."""
    src = torch.zeros(0, 3, 4, requires_grad=True)
    out = scatter(src, torch.zeros(0, dtype=torch.long), 5, reduce)
    assert out.shape == (5, 3, 4) and not out.any()
    out.sum().backward()
    assert src.grad.shape == (0, 3, 4)


def test_validation_messages():
    _, graph, _ = _graph()
    with pytest.raises(IndexError, match=r"must lie in \[0, 3\)"):
        CSRGraph.from_edge_index(torch.tensor([[0, 5], [1, 2]]), num_nodes=3)
    with pytest.raises(ValueError, match="rows but the graph has 6 source nodes"):
        gather_mul_scatter(graph, torch.randn(4, 2), torch.randn(15, 2))
    with pytest.raises(ValueError, match="graph has 15 edges"):
        gather_mul_scatter(graph, torch.randn(6, 2), torch.randn(3, 2))
    with pytest.raises(TypeError, match="floating-point"):
        gather_mul_scatter(graph, torch.ones(6, 2, dtype=torch.long), torch.randn(15, 2))
    with pytest.raises(ValueError, match="end at len"):
        segment(torch.randn(4, 2), torch.tensor([0, 2, 3]))


def test_radius_graph_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    sizes = [1, 4, 7, 3]
    pos = torch.randn(sum(sizes), 3, generator=g) * 2
    ptr = torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()])
    graph, distance = radius_graph(pos, ptr, cutoff=2.5)
    expected = set()
    for b in range(len(sizes)):
        for i in range(int(ptr[b]), int(ptr[b + 1])):
            for j in range(int(ptr[b]), int(ptr[b + 1])):
                if i != j and (pos[i] - pos[j]).norm() < 2.5:
                    expected.add((i, j))
    assert set(zip(graph.row.tolist(), graph.col.tolist(), strict=True)) == expected
    assert graph.num_edges == len(expected)
    torch.testing.assert_close(distance, (pos[graph.row] - pos[graph.col]).norm(dim=-1))


def test_triplets_match_brute_force():
    from dig.ops import triplets

    g = torch.Generator().manual_seed(4)
    sizes = [3, 5, 1, 6]
    pos = torch.randn(sum(sizes), 3, generator=g) * 1.5
    ptr = torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()])
    graph, _ = radius_graph(pos, ptr, cutoff=2.2)
    found = triplets(graph)
    edges = list(zip(graph.col.tolist(), graph.row.tolist(), strict=True))  # (source, destination)
    expected = {
        (a, b) for a, (k, j) in enumerate(edges) for b, (j2, i) in enumerate(edges) if j2 == j and k != i
    }
    got = set(zip(found.edge_kj.tolist(), found.edge_ji.tolist(), strict=True))
    assert got == expected and len(found) == len(expected)
    assert torch.equal(found.j, graph.row[found.edge_kj]) and torch.equal(found.k, graph.col[found.edge_kj])
    assert torch.equal(found.i, graph.row[found.edge_ji]) and bool((found.k != found.i).all())
    assert bool((found.edge_ji.diff() >= 0).all())
