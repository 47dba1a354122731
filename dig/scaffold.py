"""``dig plugin new NAME``: write a working plugin package that registers one 3D model.

The package installs with ``pip install -e NAME`` and runs as generated: ``dig bench --track 3d --models NAME
--budget smoke``. Its model is a small continuous-filter network on ``dig.ops`` (a starting point to edit);
its test checks registration and one training step.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from dig.errors import DigError
from dig.io import atomic_write_text
from dig.registry import NAME_PATTERN

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "{name}: a model for dig's 3D track (a dig plugin)."
requires-python = ">=3.10"
dependencies = ["dig-bench>=0.1", "torch>=2.2"]

[project.optional-dependencies]
test = ["pytest>=8"]

# dig finds the plugin through this entry point, exactly as it finds its own tracks.
[project.entry-points.dig]
{entry} = "{package}.plugin"

[tool.setuptools.packages.find]
where = ["src"]
'''

MODEL = '''\
"""{name}: a continuous-filter network on interatomic distances (a starting point; edit freely).

For atoms i and their neighbours j within the cutoff (edges j -> i):
    h_i <- h_i + MLP( sum_j h_j * W(rbf(|x_i - x_j|)) * f_cut(|x_i - x_j|) )
then one output per target and atom, turned into molecule predictions by ``AtomwiseReadout``
(atom references + mean/std scaling; sum over atoms for extensive targets such as U0).
The model is twice differentiable in the positions (smooth cutoff, SiLU), so it trains on forces too.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dig.ops import gather_mul_scatter, radius_graph
from dig.tracks.threed import MAX_ATOMIC_NUMBER, AtomwiseReadout, MoleculeBatch, TargetStats


class {cls}(nn.Module):
    def __init__(self, stats: TargetStats, hidden: int = 64, layers: int = 3, num_rbf: int = 32,
                 cutoff: float = 5.0) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("centers", torch.linspace(0.0, cutoff, num_rbf))
        self.width = (cutoff / num_rbf) ** 2
        self.embedding = nn.Embedding(MAX_ATOMIC_NUMBER + 1, hidden)
        self.filters = nn.ModuleList(
            nn.Sequential(nn.Linear(num_rbf, hidden), nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(layers)
        )
        self.updates = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(layers)
        )
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, len(stats.targets)))
        self.readout = AtomwiseReadout(stats)

    def forward(self, batch: MoleculeBatch) -> Tensor:
        graph, distance = radius_graph(batch.pos, batch.ptr, self.cutoff)
        rbf = torch.exp(-(distance.unsqueeze(-1) - self.centers) ** 2 / self.width)
        envelope = (0.5 * (torch.cos(distance * math.pi / self.cutoff) + 1.0)).unsqueeze(-1)
        h = self.embedding(batch.z)
        for filter_net, update in zip(self.filters, self.updates, strict=True):
            h = h + update(gather_mul_scatter(graph, h, filter_net(rbf) * envelope))
        return self.readout(self.head(h), batch)
'''

PLUGIN = '''\
"""dig plugin hook: registers {name} as a model of the 3D track (see dig's docs/plugins.md)."""

from __future__ import annotations

from dig.plugins import hookimpl

from {package}.model import {cls}

HPARAMS = {{
    "smoke": {{"hidden": 32, "layers": 2, "num_rbf": 16}},
    "default": {{"hidden": 64, "layers": 3, "num_rbf": 32}},
    "paper": {{"hidden": 128, "layers": 6, "num_rbf": 50}},
}}


def build(stats, **hparams) -> {cls}:
    return {cls}(stats, **hparams)


@hookimpl
def dig_register(registry) -> None:
    registry.add_model(
        "{name}", build, track="3d", hparams=HPARAMS,
        # CPU time per molecule over dig's SchNet at the default sizes; measure it with
        # `dig measure-cost {name}` (and --dataset xtb-ethanol for forces data) and write the numbers here.
        relative_cost={{"energy": 1.0, "forces": 1.0}},
        summary="{name}: continuous filters on interatomic distances (a dig plugin scaffold)",
    )
'''

TEST = '''\
"""The plugin registers through its entry point and its model trains one step on real QM9 molecules."""

import torch

from dig.plugins import load_plugins
from dig.tracks.threed.train import MoleculeLoader, target_columns, target_stats


def test_registered_through_the_entry_point():
    entry = load_plugins().registry.get("model", "{name}", track="3d")
    assert entry.plugin == "{entry}"


def test_one_training_step_lowers_nothing_to_nan():
    registry = load_plugins().registry
    dataset = registry.get("dataset", "qm9", track="3d").obj
    molecules = dataset.load()
    split = dataset.split("smoke", len(molecules))
    columns, _ = target_columns(molecules, ["U0", "homo"])
    stats, _ = target_stats(molecules, split["train"], columns)
    model = registry.get("model", "{name}", track="3d").obj(stats, **{{"hidden": 16, "layers": 1, "num_rbf": 8}})
    batch = next(iter(MoleculeLoader(molecules, split["train"][:8], columns, batch_size=8)))
    out = model(batch)
    assert out.shape == (8, 2)
    loss = (out - batch.y).abs().mean()
    loss.backward()
    assert torch.isfinite(loss)
'''

README = '''\
# {dist}

A dig plugin: registers the model `{name}` for dig's 3D track.

```bash
pip install -e .                                  # dig finds it through the `dig` entry point
dig list --kind model                             # {name} appears with plugin `{entry}`
dig bench --track 3d --models {name},schnet --budget smoke
dig measure-cost {name}                           # then set relative_cost in plugin.py
python -m pytest tests
```
'''


def _identifier(name: str) -> str:
    return re.sub(r"\W", "_", name.replace("-", "_").replace("+", "p").replace(".", "_")).lower()


def scaffold_plugin(name: str, folder: str | Path | None = None) -> list[Path]:
    """Write the plugin package for model ``name`` into ``folder`` (default ``./dig-NAME``)."""
    if not NAME_PATTERN.fullmatch(name):
        raise DigError(f"invalid model name {name!r}: start with a letter or digit; letters, digits and . _ + - only")
    identifier = _identifier(name)
    if not identifier[0].isalpha():
        identifier = f"m_{identifier}"
    root = Path(folder or f"dig-{name}")
    if root.exists() and any(root.iterdir()):
        raise DigError(f"{root} exists and is not empty; choose another folder with --dir")
    fields = {
        "name": name, "dist": f"dig-{identifier.replace('_', '-')}", "package": f"dig_{identifier}",
        "entry": identifier, "cls": "".join(part.capitalize() for part in identifier.split("_")) + "Model",
    }
    package = root / "src" / fields["package"]
    files = {
        root / "pyproject.toml": PYPROJECT,
        root / "README.md": README,
        package / "__init__.py": '"""{name}: a dig plugin."""\n',
        package / "model.py": MODEL,
        package / "plugin.py": PLUGIN,
        root / "tests" / "test_plugin.py": TEST,
    }
    return [atomic_write_text(path, textwrap.dedent(text).format(**fields)) for path, text in files.items()]
