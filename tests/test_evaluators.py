import numpy as np
import pytest

from dig.tracks.threed.evaluators import mae_per_target
from dig.tracks.threed.qm9 import TARGETS


def test_mae_reports_units_and_standardized_mae():
    targets = [t for t in TARGETS if t.name in ("mu", "U0")]
    refs = np.array([[1.0, -100.0], [3.0, -102.0]])
    preds = refs + np.array([[0.5, 0.01], [-0.5, -0.03]])
    out = mae_per_target(preds, refs, targets)
    assert out["mu_mae_D"] == pytest.approx(0.5)
    assert out["U0_mae_meV"] == pytest.approx(20.0)
    assert out["std_mae_pct"] == pytest.approx(100 * np.mean([0.5 / 1.0, 0.02 / 1.0]))


def test_mae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must both be"):
        mae_per_target(np.zeros((3, 2)), np.zeros((3, 1)), TARGETS[:2])
