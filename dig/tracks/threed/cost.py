"""A model's ``relative_cost``: its CPU time per training molecule over dig's SchNet's, both at their
``default`` sizes, measured in the same process on the same batches (``dig measure-cost MODEL``).

The equal-time budgets (``smoke``, ``default``) train a model with cost c for E / c of a dataset's E
SchNet-equivalent epochs. Energy-only data (QM9) and energy-and-force data (MD: a second backward pass
through the model) cost differently, so a model may declare one number per dataset kind:
``relative_cost={"energy": 2.0, "forces": 3.1}`` (a plain number serves both), and one per dataset where
the molecule's size changes the ratio (a triplet model's cost grows with the neighbours per atom:
``{"energy": 7.7, "forces": 8.1, "xtb-ethanol": 3.0}``; a dataset's own number wins over its kind's).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dig.errors import DigError
from dig.registry import Entry, Registry
from dig.tracks.base import per_budget
from dig.tracks.threed.train import MoleculeLoader, energy_and_forces, target_columns, target_stats

DATASET_KINDS = ("energy", "forces")
REFERENCE_MODEL = "schnet"


def dataset_kind(dataset: Entry, budget: str) -> str:
    """``"forces"`` when the dataset trains on forces in ``budget``, else ``"energy"``."""
    train = (dataset.meta.get("train") or {}).get(budget) or (dataset.meta.get("train") or {}).get("default") or {}
    return "forces" if train.get("forces_weight", 0.0) > 0 else "energy"


def declared_cost(model: Entry, kind: str, dataset: str | None = None, known_datasets: Collection[str] = ()) -> float:
    """The model's declared relative cost on ``dataset``, else for its kind (1.0 when it declares neither). A
    mapping's keys must be dataset kinds or names among ``known_datasets``."""
    cost = model.meta.get("relative_cost", 1.0)
    if isinstance(cost, Mapping):
        unknown = sorted(set(cost) - set(DATASET_KINDS) - set(known_datasets))
        if unknown:
            raise DigError(f"model {model.name!r} (plugin {model.plugin!r}) declares relative_cost for {unknown}, "
                           f"neither a dataset kind ({', '.join(DATASET_KINDS)}) nor a registered 3D dataset; "
                           "fix the key (see `dig list --kind dataset --track 3d`)")
        cost = cost.get(dataset, cost.get(kind, 1.0))
    try:
        value = float(cost)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0:
        raise DigError(f"model {model.name!r} (plugin {model.plugin!r}) declares relative_cost={cost!r}; it must be "
                       "a positive number (its CPU time per molecule over SchNet's; measure it with "
                       f"`dig measure-cost {model.name}`)")
    return value


@dataclass(frozen=True)
class CostMeasurement:
    model: str
    dataset: str
    kind: str
    seconds_per_molecule: float
    reference_seconds_per_molecule: float
    ratios: tuple[float, ...]  # one per alternation round

    @property
    def relative_cost(self) -> float:
        return statistics.median(self.ratios)


def _seconds_per_molecule(step, batches) -> float:
    start = time.process_time()
    molecules = 0
    for batch in batches:
        step(batch)
        molecules += batch.num_graphs
    return (time.process_time() - start) / molecules


def measure_relative_cost(registry: Registry, model_name: str, dataset_name: str, batch_size: int, batches: int = 8,
                          rounds: int = 3, seed: int = 0) -> CostMeasurement:
    """CPU seconds per training molecule of ``model_name`` and of SchNet at the default sizes, alternated
    ``rounds`` times on the same ``batches`` training batches (one warm-up batch each first). Training
    steps as the track runs them: L1 loss, backward, Adam; forces by autograd on force datasets."""
    dataset = registry.get("dataset", dataset_name, track="3d")
    kind = dataset_kind(dataset, "default")
    molecules = dataset.obj.load()
    split = dataset.obj.split("default", len(molecules))
    columns, _ = target_columns(molecules, list(dataset.obj.default_targets()))
    stats, _ = target_stats(molecules, split["train"], columns)
    loader = MoleculeLoader(molecules, split["train"][: batch_size * (batches + 1)], columns, batch_size)
    data = list(loader)
    warm, timed = data[:1], data[1:]
    if not timed:
        raise DigError(f"dataset {dataset_name!r} has too few training molecules to measure a cost")

    def trainer(name: str):
        entry = registry.get("model", name, track="3d")
        torch.manual_seed(seed)
        net = entry.obj(stats, **per_budget(entry.meta, "hparams", "default"))
        params = [p for p in net.parameters() if p.requires_grad]
        if not params:
            raise DigError(f"model {name!r} has no trainable parameters; its cost is nil")
        optimizer = torch.optim.Adam(params, lr=1e-4)
        net.train()

        def step(batch) -> None:
            if kind == "forces":
                out, forces = energy_and_forces(net, batch, create_graph=True)
                loss = (out - batch.y).abs().mean() + (forces - batch.forces).abs().mean()
            else:
                loss = (net(batch) - batch.y).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        for batch in warm:
            step(batch)
        return step

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as jobs run (one thread each), and independent of a busy second core
    try:
        ours, reference = trainer(model_name), trainer(REFERENCE_MODEL)
        mine, theirs = [], []
        for _ in range(rounds):
            mine.append(_seconds_per_molecule(ours, timed))
            theirs.append(_seconds_per_molecule(reference, timed))
    finally:
        torch.set_num_threads(threads)
    ratios = tuple(float(m / t) for m, t in zip(mine, theirs, strict=True))
    return CostMeasurement(model_name, dataset_name, kind, float(np.median(mine)), float(np.median(theirs)), ratios)


def cost_summary(measurement: CostMeasurement) -> dict[str, Any]:
    return {
        "model": measurement.model, "dataset": measurement.dataset, "kind": measurement.kind,
        "relative_cost": round(measurement.relative_cost, 2),
        "ratios": [round(r, 3) for r in measurement.ratios],
        "ms_per_molecule": round(1000 * measurement.seconds_per_molecule, 3),
        "schnet_ms_per_molecule": round(1000 * measurement.reference_seconds_per_molecule, 3),
    }
