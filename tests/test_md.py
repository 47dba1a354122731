"""Energy-and-force data: the GFN2-xTB dynamics builder, the canonical MD17 npz loader, force training."""

import json

import numpy as np
import pytest
import torch
from conftest import run_dig

from dig.errors import DataError
from dig.tracks.threed.md import MD17, XTBDynamics, build_xtb_frames, read_md17_npz, simulate_xtb_dynamics
from dig.tracks.threed.models.schnet import build_schnet
from dig.tracks.threed.train import MoleculeLoader, energy_and_forces, target_stats

KCAL_PER_EV = 23.060548


@pytest.fixture(scope="module")
def ethanol_frames():
    return simulate_xtb_dynamics("CCO", frames=200, temperature_k=500.0, timestep_fs=0.5, stride=1,
                                 equilibration_steps=20, seed=0)


def test_xtb_dynamics_forces_are_minus_energy_gradient(ethanol_frames):
    from ase import Atoms
    from tblite.ase import TBLite

    frames = ethanol_frames
    assert frames["pos"].shape == (200, 9, 3) and frames["forces"].shape == (200, 9, 3)
    assert frames["z"].tolist().count(6) == 2 and np.isfinite(frames["energy"]).all()
    assert np.ptp(frames["energy"]) > 0.01, "the trajectory should move"
    atoms = Atoms(numbers=frames["z"], positions=frames["pos"][50].astype(np.float64))
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    step = 1e-3
    for atom, axis in [(0, 0), (3, 2)]:
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.calc = TBLite(method="GFN2-xTB", verbosity=0)
            moved.positions[atom, axis] += sign * step
            energies.append(moved.get_potential_energy())
        numeric = -(energies[0] - energies[1]) / (2 * step)
        assert atoms.get_forces()[atom, axis] == pytest.approx(numeric, abs=2e-3)
    np.testing.assert_allclose(atoms.get_forces(), frames["forces"][50], atol=1e-3)


def test_independent_trajectories_are_built_in_parallel_and_concatenated():
    settings = dict(temperature_k=500.0, timestep_fs=0.5, stride=2, equilibration_steps=2)
    frames = build_xtb_frames("CCO", frames=7, trajectories=2, seed=3, **settings)
    assert frames["pos"].shape == (7, 9, 3) and frames["forces"].shape == (7, 9, 3) and frames["energy"].shape == (7,)
    first = simulate_xtb_dynamics("CCO", frames=4, seed=3, **settings)  # the first run takes the extra frame
    second = simulate_xtb_dynamics("CCO", frames=3, seed=4, **settings)
    np.testing.assert_allclose(frames["energy"], np.concatenate([first["energy"], second["energy"]]))
    np.testing.assert_allclose(frames["pos"][4:], second["pos"])


def _write_md17(path, frames):
    np.savez(path, R=frames["pos"].astype(np.float64), z=frames["z"].astype(np.uint8),
             E=(frames["energy"] * KCAL_PER_EV)[:, None], F=frames["forces"] * KCAL_PER_EV,
             name=np.array("ethanol"), theory=np.array("GFN2-xTB (test fixture)"))


def test_md17_npz_loader_on_a_fixture_in_that_format(tmp_path, ethanol_frames):
    _write_md17(tmp_path / "md17_ethanol.npz", ethanol_frames)
    arrays = read_md17_npz(tmp_path / "md17_ethanol.npz")
    assert arrays["pos"].shape == (200, 9, 3) and arrays["energy"].shape == (200,)
    np.testing.assert_allclose(arrays["forces"], ethanol_frames["forces"] * KCAL_PER_EV)
    np.savez(tmp_path / "bad.npz", R=np.zeros((2, 3, 3)), z=np.ones(3))
    with pytest.raises(DataError, match="lacks arrays"):
        read_md17_npz(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="not prepared"):
        MD17("uracil").load()


def test_force_prediction_is_equivariant(ethanol_frames):
    dataset = XTBDynamics("ethanol", frames=200)
    dataset._arrays = lambda: ethanol_frames
    molecules = dataset.load()
    stats, _ = target_stats(molecules, np.arange(100), [0])
    torch.manual_seed(0)
    model = build_schnet(stats, hidden=16, filters=16, interactions=2, num_gaussians=10, cutoff=5.0).double()
    batch = MoleculeLoader(molecules, np.arange(4), [0], 4).batch(np.arange(4))
    batch.pos = batch.pos.double()
    energy, forces = energy_and_forces(model, batch, create_graph=False)
    rotation, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    rotated = batch.to("cpu")
    rotated.pos = batch.pos @ rotation.T + 0.7
    energy_r, forces_r = energy_and_forces(model, rotated, create_graph=False)
    torch.testing.assert_close(energy_r, energy)
    torch.testing.assert_close(forces_r, forces @ rotation.T)
    assert forces.abs().sum() > 0


def test_force_bench_through_the_cli(tmp_path, ethanol_frames, monkeypatch):
    _write_md17(tmp_path / "md17_ethanol.npz", ethanol_frames)
    prepared = run_dig("data", "prepare", "md17-ethanol", "--from", str(tmp_path / "md17_ethanol.npz"))
    assert prepared.returncode == 0, prepared.stderr
    out = run_dig("bench", "--track", "3d", "--datasets", "md17-ethanol", "--models", "mean,schnet", "--seeds", "0",
                  "--budget", "smoke", "--quiet", "--out", str(tmp_path / "res"))
    assert out.returncode == 0, out.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "res" / "3d").glob("*.json")]
    for record in records:
        metrics = {m["name"] for m in record["metrics"] if m["split"] == "test"}
        assert {"energy_mae_kcalmol", "forces_mae_kcalmolA"} <= metrics, record["model"]
        assert record["config"]["train"]["forces_weight"] == 100.0
