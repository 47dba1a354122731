"""Whole-model figure: one SchNet training epoch on a fixed QM9 slice, dig's SchNet vs PyG's
``torch_geometric.nn.models.SchNet`` with equal hyper-parameters (128 hidden, 128 filters, 6 interactions,
50 Gaussians, cutoff 10 Å, batch 32). PyG's own radius graph needs pyg-lib, which no reachable registry
serves, so both models get the same pure-torch radius graph (``dig.ops.radius_graph``)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from conftest import RATIOS

from dig.ops import radius_graph
from dig.tracks.threed.models.schnet import SchNet
from dig.tracks.threed.qm9 import QM9
from dig.tracks.threed.train import MoleculeLoader, target_columns, target_stats

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from torch_geometric.nn.models import SchNet as PygSchNet

MOLECULES = int(os.environ.get("DIG_BENCH_MOLECULES", "512"))
HPARAMS = dict(hidden=128, filters=128, interactions=6, num_gaussians=50, cutoff=10.0)


@pytest.fixture(scope="module")
def qm9_slice():
    molecules = QM9().load()
    train = QM9().split("paper", len(molecules))["train"][:MOLECULES]
    columns, _ = target_columns(molecules, ["U0"])
    stats, _ = target_stats(molecules, train, columns)
    return molecules, train, columns, stats


def _epoch(model, forward, loader, optimizer):
    for batch in loader:
        loss = (forward(model, batch) - batch.y).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def test_schnet_training_throughput_vs_pyg(qm9_slice, compare):
    molecules, train, columns, stats = qm9_slice
    torch.manual_seed(0)
    ours = SchNet(stats, **HPARAMS)

    def pure_torch_graph(pos, batch):
        ptr = torch.zeros(int(batch.max()) + 2, dtype=torch.long)
        ptr[1:] = torch.bincount(batch).cumsum(0)
        graph, distance = radius_graph(pos, ptr, HPARAMS["cutoff"])
        return torch.stack([graph.col, graph.row]), distance

    theirs = PygSchNet(hidden_channels=128, num_filters=128, num_interactions=6, num_gaussians=50, cutoff=10.0,
                       interaction_graph=pure_torch_graph)
    loader = MoleculeLoader(molecules, train, columns, batch_size=32, shuffle=True, seed=0)
    opt_ours = torch.optim.Adam(ours.parameters(), lr=5e-4)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=5e-4)
    ours_s, theirs_s, ratio = compare(
        lambda: _epoch(ours, lambda m, b: m(b), loader, opt_ours),
        lambda: _epoch(theirs, lambda m, b: m(b.z, b.pos, b.batch), loader, opt_theirs),
        rounds=2, label="speedup_vs_pyg_schnet", note=f"{MOLECULES} QM9 molecules, batch 32, one training epoch",
    )
    RATIOS.append(("schnet_molecules_per_s", "ours", MOLECULES / ours_s, f"PyG: {MOLECULES / theirs_s:.1f} mol/s"))
    assert np.isfinite(ratio)


def test_schnet_throughput_vs_pyg_both_flushing_denormals(qm9_slice, compare):
    """Most of the gap above is dig's Gaussian basis avoiding denormal floats. With denormals flushed to zero
    for both (a process-wide CPU flag), what is left is the message passing itself."""
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        test_schnet_training_throughput_vs_pyg(qm9_slice, compare)
    finally:
        torch.set_flush_denormal(False)
