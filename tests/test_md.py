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
    # MD17's smoke split needs 64 / 32 / 64 frames in time blocks 500 frames (250 fs) apart: the 200 simulated
    # frames eight times over (a pipeline check; the blocks repeat each other)
    tiled = {key: (value if key == "z" else np.concatenate([value] * 8)) for key, value in ethanol_frames.items()}
    _write_md17(tmp_path / "md17_ethanol.npz", tiled)
    prepared = run_dig("data", "prepare", "md17-ethanol", "--from", str(tmp_path / "md17_ethanol.npz"))
    assert prepared.returncode == 0, prepared.stderr
    out = run_dig("bench", "--track", "3d", "--datasets", "md17-ethanol", "--models", "mean,schnet,nearest-frame",
                  "--seeds", "0", "--budget", "smoke", "--quiet", "--out", str(tmp_path / "res"))
    assert out.returncode == 0, out.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "res" / "3d").glob("*.json")]
    for record in records:
        metrics = {m["name"] for m in record["metrics"] if m["split"] == "test"}
        assert {"energy_mae_kcalmol", "forces_mae_kcalmolA"} <= metrics, record["model"]
        assert record["config"]["train"]["forces_weight"] == 100.0
    assert {r["model"] for r in records} == {"mean", "schnet", "nearest-frame"}


def test_xtb_splits_keep_whole_trajectories_apart():
    """Train, validation and test frames come from different independent runs, so no evaluated frame is a few
    femtoseconds from a training frame (the old random split put 66 % of test frames 5 fs from one)."""
    dataset = XTBDynamics("ethanol")
    trajectory = np.repeat(np.arange(4), 500)
    dataset._arrays = lambda: {"z": np.array([6, 6, 8, 1, 1, 1, 1, 1, 1]), "trajectory": trajectory,
                               "pos": np.random.RandomState(0).rand(2000, 9, 3).astype(np.float32) * 3,
                               "energy": np.zeros(2000), "forces": np.zeros((2000, 9, 3))}
    for budget, sizes in (("smoke", (64, 32, 64)), ("default", (1000, 250, 500)), ("paper", (1000, 500, 500))):
        split = dataset.split(budget, 2000)
        assert tuple(len(split[p]) for p in ("train", "valid", "test")) == sizes
        runs = {part: set(trajectory[idx].tolist()) for part, idx in split.items()}
        assert runs == {"train": {0, 1}, "valid": {2}, "test": {3}}, (budget, runs)
        assert len(np.unique(split["train"])) == len(split["train"])


def test_md17_splits_are_time_blocks_250_fs_apart_except_the_published_paper_split():
    dataset = MD17("ethanol")
    split = dataset.split("default", 20_000)
    gap_fs = 0.5 * min(np.abs(split[p][:, None] - split["train"][None, :]).min() for p in ("valid", "test"))
    assert gap_fs >= 250.0
    assert split["train"].max() < split["valid"].min() < split["test"].min()
    paper = dataset.split("paper", 20_000)
    assert len(paper["train"]) == 1000 and len(paper["valid"]) == 1000 and len(paper["test"]) == 18_000
    with pytest.raises(DataError, match="too short"):
        dataset.split("smoke", 900)


def test_nearest_frame_returns_the_nearest_training_frame_with_rotated_forces(ethanol_frames):
    from dig.tracks.threed.models.nearest_frame import build_nearest_frame

    dataset = XTBDynamics("ethanol", frames=200)
    dataset._arrays = lambda: ethanol_frames
    molecules = dataset.load()
    stats, _ = target_stats(molecules, np.arange(0, 200, 2), [0])
    model = build_nearest_frame(stats)
    model.fit_training_set(MoleculeLoader(molecules, np.arange(0, 200, 2), [0], 16, shuffle=True))
    batch = MoleculeLoader(molecules, np.array([10, 11]), [0], 2).batch(np.array([10, 11]))
    energy, forces = energy_and_forces(model, batch, create_graph=False)
    torch.testing.assert_close(energy[0], batch.y[0])  # a training frame is its own nearest frame
    torch.testing.assert_close(forces[:9], batch.forces[:9], atol=1e-5, rtol=1e-5)
    neighbours = {float(molecules.y[10, 0]), float(molecules.y[12, 0])}  # frame 11 between training frames 10, 12
    assert min(abs(float(energy[1, 0].detach()) - value) for value in neighbours) < 1e-3
    rotation, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))
    rotation = rotation * torch.sign(torch.linalg.det(rotation))
    turned = batch.to("cpu")
    turned.pos = batch.pos @ rotation.T + 2.0
    energy_r, forces_r = energy_and_forces(model, turned, create_graph=False)
    torch.testing.assert_close(energy_r, energy)
    torch.testing.assert_close(forces_r, forces @ rotation.T, atol=1e-4, rtol=1e-4)


def test_trajectory_baselines_are_left_out_of_qm9_unless_named(tmp_path):
    out = run_dig("bench", "--track", "3d", "--datasets", "qm9", "--models", "nearest-frame", "--seeds", "0",
                  "--budget", "smoke", "--out", str(tmp_path / "res"))
    assert out.returncode == 2 and "does not apply to dataset 'qm9'" in " ".join(out.stderr.split())
