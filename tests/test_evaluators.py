from dataclasses import replace

import numpy as np
import pytest

from dig.tracks.threed.evaluators import mae_per_target
from dig.tracks.threed.qm9 import QM9, TARGETS
from dig.tracks.threed.train import scored_std


def test_mae_reports_units_and_standardized_mae():
    targets = [t for t in TARGETS if t.name in ("mu", "U0")]
    refs = np.array([[1.0, -100.0], [3.0, -102.0]])
    preds = refs + np.array([[0.5, 0.01], [-0.5, -0.03]])
    out = mae_per_target(preds, refs, targets)
    assert out["mu_mae_D"] == pytest.approx(0.5)
    assert out["U0_mae_meV"] == pytest.approx(20.0)
    assert out["std_mae_2targets_pct"] == pytest.approx(100 * np.mean([0.5 / 1.0, 0.02 / 1.0]))
    scaled = [replace(targets[0], dataset_std=2.0), replace(targets[1], dataset_std=0.5)]
    out = mae_per_target(preds, refs, scaled)
    assert out["std_mae_2targets_pct"] == pytest.approx(100 * np.mean([0.5 / 2.0, 0.02 / 0.5]))


def test_u0_is_standardized_by_the_std_of_atomization_energies():
    """QM9's U0 std over total energies is ~1,100 eV (molecule size); over atomization energies ~10 eV."""
    qm9 = QM9().load()
    column = qm9.target_index(["U0"])
    (std,) = scored_std(qm9, column)
    assert 8.0 < std < 13.0, std
    assert qm9.y[:, column[0]].std() > 500.0
    (homo_std,) = scored_std(qm9, qm9.target_index(["homo"]))
    assert homo_std == pytest.approx(qm9.y[:, qm9.target_index(["homo"])[0]].std())


def test_mae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must both be"):
        mae_per_target(np.zeros((3, 2)), np.zeros((3, 1)), TARGETS[:2])
