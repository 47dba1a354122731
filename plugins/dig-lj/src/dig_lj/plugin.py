"""dig plugin hook: registers the LJ13 forces dataset for the 3D track."""

from __future__ import annotations

from dig.plugins import hookimpl
from dig_lj.dataset import LJ13

# Energy-and-force training, as for dig's own MD datasets: loss L(E) + rho L(F) with rho = 100.
TRAIN = {
    "smoke": {"forces_weight": 100.0},
    "default": {"forces_weight": 100.0, "epochs": 20, "min_epochs": 5, "batch_size": 8, "lr": 3e-3},
    "paper": {"forces_weight": 100.0},
}


@hookimpl
def dig_register(registry) -> None:
    registry.add_dataset(
        "lj13", LJ13(), track="3d", evaluator="mae", train=TRAIN,
        summary="LJ13 argon cluster: exact Lennard-Jones energies and forces, Monte Carlo at 30 K (built offline)",
    )
