"""Training throughput (molecules/s) and peak memory of every 3D model on the same QM9 slice, each against
PyG's SchNet with SchNet's published hyper-parameters measured in the same run (PyG's SchNet gets dig's
pure-torch radius graph: its own needs pyg-lib, which no reachable registry serves). PyG's DimeNetPlusPlus
needs torch-sparse, a source build against torch that is not attempted here; it is not compared.

Models run at their ``paper`` (published) sizes on ``DIG_BENCH_MOLECULES`` molecules (default 256), batch 32.
"""

from __future__ import annotations

import os
import threading
import time
import warnings

import pytest
import torch
from conftest import RATIOS

from dig.plugins import load_plugins
from dig.tracks.threed.qm9 import QM9
from dig.tracks.threed.train import MoleculeLoader, target_columns, target_stats

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from torch_geometric.nn.models import SchNet as PygSchNet

MOLECULES = int(os.environ.get("DIG_BENCH_MOLECULES", "256"))
REGISTRY = load_plugins().registry
MODELS = [name for name in REGISTRY.names("model", "3d") if name != "mean"]


class PeakRSS:
    """Peak resident memory above the level at entry, sampled from /proc every 2 ms (CPU runs)."""

    def __enter__(self):
        self.base = self.peak = self._rss()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()

    @property
    def megabytes(self) -> float:
        return (self.peak - self.base) / 2**20


@pytest.fixture(scope="module")
def qm9_slice():
    molecules = QM9().load()
    train = QM9().split("paper", len(molecules))["train"][:MOLECULES]
    columns, _ = target_columns(molecules, ["U0"])
    stats, _ = target_stats(molecules, train, columns)
    return MoleculeLoader(molecules, train, columns, batch_size=32, shuffle=True, seed=0), stats


def _epoch(model, forward, loader):
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)

    def run():
        for batch in loader:
            loss = (forward(model, batch) - batch.y).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return run


def _pyg_schnet():
    from dig.ops import radius_graph

    def pure_torch_graph(pos, batch):
        ptr = torch.zeros(int(batch.max()) + 2, dtype=torch.long)
        ptr[1:] = torch.bincount(batch).cumsum(0)
        graph, distance = radius_graph(pos, ptr, 10.0)
        return torch.stack([graph.col, graph.row]), distance

    return PygSchNet(hidden_channels=128, num_filters=128, num_interactions=6, num_gaussians=50, cutoff=10.0,
                     interaction_graph=pure_torch_graph)


@pytest.mark.parametrize("name", MODELS)
def test_model_training_throughput_and_memory(name, qm9_slice, compare):
    loader, stats = qm9_slice
    torch.manual_seed(0)
    entry = REGISTRY.get("model", name, track="3d")
    ours = entry.obj(stats, **(entry.meta.get("hparams") or {}).get("paper", {}))
    theirs = _pyg_schnet()
    with PeakRSS() as ours_memory:
        ours_run = _epoch(ours, lambda m, b: m(b), loader)
        ours_run()
    with PeakRSS() as pyg_memory:
        pyg_run = _epoch(theirs, lambda m, b: m(b.z, b.pos, b.batch), loader)
        pyg_run()
    ours_s, pyg_s, ratio = compare(ours_run, pyg_run, rounds=1, label="throughput_vs_pyg_schnet",
                                   note=f"{name} (paper size) vs PyG SchNet, {MOLECULES} molecules")
    RATIOS.append((f"{name}_molecules_per_s", "ours", MOLECULES / ours_s,
                   f"PyG SchNet {MOLECULES / pyg_s:.1f} mol/s; peak RSS {ours_memory.megabytes:.0f} MB vs "
                   f"{pyg_memory.megabytes:.0f} MB"))
