"""Training throughput (molecules/s) and peak memory of every 3D model on the same QM9 slice, each against
PyG's SchNet with SchNet's published hyper-parameters measured in the same run (PyG's SchNet gets dig's
pure-torch radius graph: its own needs pyg-lib, which no reachable registry serves). PyG's DimeNetPlusPlus
needs torch-sparse, a source build against torch that is not attempted here; it is not compared.

Models run at their ``paper`` (published) sizes on ``DIG_BENCH_MOLECULES`` molecules (default 256), batch 32.
"""

from __future__ import annotations

import os
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


PEAK_MEMORY_SCRIPT = """
import sys, torch
sys.path.insert(0, {bench_dir!r})
from test_bench_3d_models import REGISTRY, _epoch, _pyg_schnet, qm9_loader
loader, stats = qm9_loader()
name = sys.argv[1]
if name == "pyg-schnet":
    model, forward = _pyg_schnet(), lambda m, b: m(b.z, b.pos, b.batch)
else:
    entry = REGISTRY.get("model", name, track="3d")
    model, forward = entry.obj(stats, **(entry.meta.get("hparams") or {{}}).get("paper", {{}})), lambda m, b: m(b)
_epoch(model, forward, loader)()
# VmHWM is this process image's peak; ru_maxrss would carry the forking parent's peak across exec
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024)
"""


def peak_memory_mb(name: str) -> float:
    """Peak resident memory (MB) of a fresh process that trains ``name`` for one epoch on the slice."""
    import subprocess
    import sys

    script = PEAK_MEMORY_SCRIPT.format(bench_dir=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", script, name], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def qm9_loader():
    molecules = QM9().load()
    train = QM9().split("paper", len(molecules))["train"][:MOLECULES]
    columns, _ = target_columns(molecules, ["U0"])
    stats, _ = target_stats(molecules, train, columns)
    return MoleculeLoader(molecules, train, columns, batch_size=32, shuffle=True, seed=0), stats


@pytest.fixture(scope="module")
def qm9_slice():
    return qm9_loader()


@pytest.fixture(scope="module")
def pyg_peak_mb():
    return peak_memory_mb("pyg-schnet")


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
def test_model_training_throughput_and_memory(name, qm9_slice, pyg_peak_mb, compare):
    loader, stats = qm9_slice
    torch.manual_seed(0)
    entry = REGISTRY.get("model", name, track="3d")
    ours = entry.obj(stats, **(entry.meta.get("hparams") or {}).get("paper", {}))
    theirs = _pyg_schnet()
    ours_run = _epoch(ours, lambda m, b: m(b), loader)
    pyg_run = _epoch(theirs, lambda m, b: m(b.z, b.pos, b.batch), loader)
    ours_s, pyg_s, ratio = compare(ours_run, pyg_run, rounds=1, label="throughput_vs_pyg_schnet",
                                   note=f"{name} (paper size) vs PyG SchNet, {MOLECULES} molecules")
    RATIOS.append((f"{name}_molecules_per_s", "ours", MOLECULES / ours_s,
                   f"PyG SchNet {MOLECULES / pyg_s:.1f} mol/s; peak RSS of a one-epoch process "
                   f"{peak_memory_mb(name):.0f} MB vs PyG SchNet {pyg_peak_mb:.0f} MB", " mol/s"))
