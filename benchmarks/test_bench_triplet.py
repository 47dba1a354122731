"""The fused triplet-basis op (``dig.ops.triplet_basis_aggregate``, issue #14) against the unfused path it
replaced (the basis projection W s as a [T, C] tensor, then ``gather_mul_scatter``), measured in the same run:
the op alone on a default-size QM9 batch, and whole DimeNet++ training steps at the ``default`` budget's sizes
(QM9 energies; and energy + forces, the second derivative that MD training takes, on the same molecules).

Threads: ``DIG_BENCH_THREADS`` (``dig bench`` gives each of its workers one thread on a 2-core machine, so
``DIG_BENCH_THREADS=1`` is the setting the leaderboard trains in).
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from conftest import RATIOS

import dig.ops.triplet_basis as triplet_basis_module
from dig.ops import gather_mul_scatter, radius_graph
from dig.plugins import load_plugins
from dig.tracks.threed.models.dimenet import triplet_geometry
from dig.tracks.threed.qm9 import QM9
from dig.tracks.threed.train import MoleculeLoader, energy_and_forces, target_columns, target_stats

REGISTRY = load_plugins().registry
STEPS = 4


@contextmanager
def unfused():
    """Today's path before the fused op: what ``triplet_basis_aggregate`` does without its compiled kernels."""
    kernels = triplet_basis_module.triplet_basis_kernels
    triplet_basis_module.triplet_basis_kernels = lambda: None
    try:
        yield
    finally:
        triplet_basis_module.triplet_basis_kernels = kernels


@pytest.fixture(scope="module")
def qm9_batches():
    molecules = QM9().load()
    train = QM9().split("default", len(molecules))["train"][: 32 * STEPS]
    columns, _ = target_columns(molecules, ["U0", "homo", "lumo", "gap"])
    stats, _ = target_stats(molecules, train, columns)
    return list(MoleculeLoader(molecules, train, columns, batch_size=32)), stats


def _dimenet(stats):
    entry = REGISTRY.get("model", "dimenet++", track="3d")
    torch.manual_seed(0)
    return entry.obj(stats, **entry.meta["hparams"]["default"])


def test_triplet_basis_op_fused_vs_unfused(qm9_batches, compare):
    batch = qm9_batches[0][0]
    graph, _ = radius_graph(batch.pos, batch.ptr, 5.0)
    edge_graph, _, found = triplet_geometry(batch.pos, graph)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(graph.num_edges, 32, generator=generator, requires_grad=True)  # default int_emb 32
    s = torch.randn(len(found), 8, generator=generator, requires_grad=True)  # basis_emb 8
    w = torch.randn(32, 8, generator=generator, requires_grad=True)
    grad = torch.randn(graph.num_edges, 32, generator=generator)

    def fused():
        torch.autograd.grad(triplet_basis_module.triplet_basis_aggregate(edge_graph, x, s, w), (x, s, w), grad)

    def reference():
        torch.autograd.grad(gather_mul_scatter(edge_graph, x, s @ w.t()), (x, s, w), grad)

    compare(fused, reference, rounds=10, label="fused_vs_unfused",
            note=f"forward + backward, E={graph.num_edges} edges, T={len(found)} triplets (32 QM9 molecules)")


def _training(model, batches, forces: bool):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run():
        for batch in batches:
            if forces:
                energy, force = energy_and_forces(model, batch, create_graph=True)
                loss = energy.abs().mean() + force.abs().mean()
            else:
                loss = (model(batch) - batch.y).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return run


@pytest.mark.parametrize("forces", [False, True], ids=["energy", "energy_and_forces"])
def test_dimenet_pp_training_step_fused_vs_unfused(qm9_batches, forces, compare):
    batches, stats = qm9_batches
    batches = batches[:2] if forces else batches
    fused_model, unfused_model = _dimenet(stats), _dimenet(stats)

    def reference():
        with unfused():
            _training(unfused_model, batches, forces)()

    ours_s, reference_s, _ = compare(_training(fused_model, batches, forces), reference, rounds=3,
                                     label="step_fused_vs_unfused",
                                     note=f"DimeNet++ default size, {len(batches)} steps of 32 QM9 molecules"
                                          f"{', energy + forces' if forces else ''}, {torch.get_num_threads()} thread(s)")
    molecules = 32 * len(batches)
    RATIOS.append((f"dimenet_pp_{'forces_' if forces else ''}ms_per_molecule", "fused", 1000 * ours_s / molecules,
                   f"unfused {1000 * reference_s / molecules:.1f} ms", " ms"))
