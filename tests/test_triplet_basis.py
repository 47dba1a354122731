"""The fused triplet-basis op (dig.ops.triplet_basis_aggregate): against the unfused path it replaces, in values,
gradients and second derivatives (forces training), on real triplets of a small molecule batch and on edge cases."""

import pytest
import torch

import dig.ops.triplet_basis as triplet_basis_module
from dig.ops import CSRGraph, gather_mul_scatter, radius_graph, triplet_basis_aggregate, triplets
from dig.ops._cpp import triplet_basis_kernels


def _edge_graph(atoms=(5, 4), seed=0, dtype=torch.float64):
    """The triplet edge graph of two random 'molecules' (DimeNet++'s: destinations j -> i, sources k -> j)."""
    g = torch.Generator().manual_seed(seed)
    pos = (torch.rand(sum(atoms), 3, generator=g) * 3.0).to(dtype)
    ptr = torch.tensor([0, *torch.tensor(atoms).cumsum(0).tolist()])
    graph, _ = radius_graph(pos, ptr, 5.0)
    found = triplets(graph)
    return CSRGraph.from_sorted(found.edge_ji, found.edge_kj, graph.num_edges)


def _inputs(edge_graph, channels=6, basis=3, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(edge_graph.num_src_nodes, channels, generator=g, dtype=dtype, requires_grad=True)
    s = torch.randn(edge_graph.num_edges, basis, generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(channels, basis, generator=g, dtype=dtype, requires_grad=True)
    return x, s, w


def _unfused(edge_graph, x, s, w):
    return gather_mul_scatter(edge_graph, x, s @ w.t())


def test_the_compiled_kernels_build_here():
    """CI has gcc: the fused path must really run there, not fall back silently."""
    assert triplet_basis_kernels() is not None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_values_and_gradients_equal_the_unfused_path(dtype):
    edge_graph = _edge_graph(dtype=dtype)
    assert edge_graph.num_edges > 50
    x, s, w = _inputs(edge_graph, channels=33, basis=8, dtype=dtype)  # 33: the kernels' vector lanes plus a tail
    fused, unfused = triplet_basis_aggregate(edge_graph, x, s, w), _unfused(edge_graph, x, s, w)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}
    torch.testing.assert_close(fused, unfused, **tol)
    grad = torch.randn_like(fused)
    got = torch.autograd.grad(fused, (x, s, w), grad)
    want = torch.autograd.grad(unfused, (x, s, w), grad)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, **tol)


def test_gradcheck_and_second_derivatives():
    edge_graph = _edge_graph(atoms=(4, 3))
    x, s, w = _inputs(edge_graph)
    assert torch.autograd.gradcheck(lambda *t: triplet_basis_aggregate(edge_graph, *t), (x, s, w))
    assert torch.autograd.gradgradcheck(lambda *t: triplet_basis_aggregate(edge_graph, *t), (x, s, w))


def test_forces_through_the_fused_op_equal_the_unfused_ones():
    """Energy from positions through the op, forces = -dE/dpos with create_graph, then a loss on the forces
    differentiated once more (what forces training does): equal to the unfused path."""
    torch.manual_seed(0)
    pos = (torch.rand(9, 3, dtype=torch.float64) * 3.0).requires_grad_()
    ptr = torch.tensor([0, 5, 9])
    w = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)

    def energy(aggregate):
        graph, distance = radius_graph(pos, ptr, 5.0)
        found = triplets(graph)
        edge_graph = CSRGraph.from_sorted(found.edge_ji, found.edge_kj, graph.num_edges)
        x = torch.stack([distance.sin(), distance.cos(), distance, distance**2], -1)
        basis = torch.stack([distance[found.edge_kj], distance[found.edge_ji].exp()], -1)
        return aggregate(edge_graph, x, basis, w).tanh().sum()

    results = []
    for aggregate in (triplet_basis_aggregate, _unfused):
        forces = -torch.autograd.grad(energy(aggregate), pos, create_graph=True)[0]
        loss = forces.pow(2).sum()
        results.append((forces, *torch.autograd.grad(loss, (pos, w))))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_edges_without_triplets_and_no_triplets_at_all():
    edge_graph = CSRGraph.from_sorted(torch.tensor([0, 0, 2]), torch.tensor([1, 2, 1]), 4)  # edges 1 and 3: none
    x, s, w = _inputs(edge_graph, channels=5, basis=2)
    out = triplet_basis_aggregate(edge_graph, x, s, w)
    torch.testing.assert_close(out, _unfused(edge_graph, x, s, w))
    assert out[1].abs().sum() == 0 and out[3].abs().sum() == 0
    empty = CSRGraph.from_sorted(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 3)
    x, s, w = _inputs(empty, channels=5, basis=2)
    out = triplet_basis_aggregate(empty, x, s, w)
    assert out.shape == (3, 5) and out.abs().sum() == 0
    out.sum().backward()
    assert x.grad.abs().sum() == 0 and w.grad.abs().sum() == 0


def test_without_the_compiled_kernels_the_torch_path_gives_the_same_values(monkeypatch):
    edge_graph = _edge_graph()
    x, s, w = _inputs(edge_graph)
    fused = triplet_basis_aggregate(edge_graph, x, s, w)
    monkeypatch.setattr(triplet_basis_module, "triplet_basis_kernels", lambda: None)
    torch.testing.assert_close(triplet_basis_aggregate(edge_graph, x, s, w), fused, rtol=1e-10, atol=1e-10)


def test_same_numbers_on_every_thread_count():
    edge_graph = _edge_graph(atoms=(9, 8, 9))
    x, s, w = _inputs(edge_graph, channels=32, basis=8, dtype=torch.float32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = triplet_basis_aggregate(edge_graph, x, s, w)
        grads_one = torch.autograd.grad(one.sum(), (x, s, w))
        torch.set_num_threads(2)
        two = triplet_basis_aggregate(edge_graph, x, s, w)
        grads_two = torch.autograd.grad(two.sum(), (x, s, w))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)
    assert all(torch.equal(a, b) for a, b in zip(grads_one, grads_two, strict=True))


def test_bad_input_names_the_argument():
    edge_graph = _edge_graph()
    x, s, w = _inputs(edge_graph)
    with pytest.raises(ValueError, match="weight must be"):
        triplet_basis_aggregate(edge_graph, x, s, w.t())
    with pytest.raises(ValueError, match="basis has"):
        triplet_basis_aggregate(edge_graph, x, s[:-1], w)
    with pytest.raises(ValueError, match="x has"):
        triplet_basis_aggregate(edge_graph, x[:-1], s, w)
    with pytest.raises(ValueError, match="basis is torch.float32"):
        triplet_basis_aggregate(edge_graph, x, s.float(), w)
    with pytest.raises(TypeError, match="x must be"):
        triplet_basis_aggregate(edge_graph, x.long(), s, w)
