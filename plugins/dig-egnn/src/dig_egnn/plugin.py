"""dig plugin hook: registers EGNN as a model of the 3D track."""

from __future__ import annotations

from dig.plugins import hookimpl
from dig_egnn.model import EGNN

HPARAMS = {
    "smoke": {"hidden": 32, "layers": 2, "cutoff": 5.0},
    "default": {"hidden": 64, "layers": 4, "cutoff": 5.0},
    "paper": {"hidden": 128, "layers": 7, "cutoff": 5.0},
}


def build_egnn(stats, **hparams) -> EGNN:
    return EGNN(stats, **hparams)


@hookimpl
def dig_register(registry) -> None:
    registry.add_model(
        "egnn", build_egnn, track="3d", hparams=HPARAMS,
        # CPU time per molecule over dig's SchNet at the default sizes (`dig measure-cost egnn`, 2026-12-07: QM9
        # 1.12, aspirin 1.08, ethanol 1.11): the default budget trains it for 1/1.1 of SchNet's epochs
        relative_cost={"energy": 1.12, "forces": 1.09},
        summary="EGNN: E(n)-equivariant message passing (Satorras, Hoogeboom & Welling, ICML 2021)",
    )
