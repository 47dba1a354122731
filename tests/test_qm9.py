"""QM9 from the real qm9pack files, the split convention, and DimeNet's canonical npz format."""

import numpy as np
import pytest

from dig.errors import DataError
from dig.tracks.threed.qm9 import HARTREE_TO_EV, NUM_MOLECULES, QM9, TARGET_NAMES, read_qm9pack_csv


@pytest.fixture(scope="module")
def qm9():
    return QM9().load()


def test_real_qm9_counts_and_first_molecule(qm9):
    assert len(qm9) == NUM_MOLECULES
    assert qm9.y.shape == (NUM_MOLECULES, 12)
    assert qm9.z[: qm9.ptr[1]].tolist() == [6, 1, 1, 1, 1]  # methane
    row = dict(zip(TARGET_NAMES, qm9.y[0], strict=True))
    assert row["U0"] == pytest.approx(-40.47893 * HARTREE_TO_EV)
    assert row["homo"] == pytest.approx(-0.3877 * HARTREE_TO_EV)
    assert row["alpha"] == pytest.approx(13.21)
    assert np.isfinite(qm9.y).all() and np.isfinite(qm9.pos).all()


def test_split_is_dimenet_convention_and_budgets_take_prefixes(qm9):
    dataset = QM9()
    paper = dataset.split("paper", len(qm9))
    assert [len(paper[p]) for p in ("train", "valid", "test")] == [110_000, 10_000, 10_831]
    every = np.concatenate(list(paper.values()))
    assert len(np.unique(every)) == NUM_MOLECULES
    order = np.arange(NUM_MOLECULES)
    np.random.RandomState(42).shuffle(order)
    assert np.array_equal(paper["train"], order[:110_000])
    smoke = dataset.split("smoke", len(qm9))
    for part in ("train", "valid", "test"):
        assert np.array_equal(smoke[part], paper[part][: len(smoke[part])])


def _write_dimenet_npz(path, molecules, count):
    ptr = molecules.ptr[: count + 1]
    arrays = {"R": molecules.pos[: ptr[-1]].astype(np.float64), "Z": molecules.z[: ptr[-1]].astype(np.int64),
              "N": np.diff(ptr), "id": molecules.ids[:count]}
    arrays.update({name: molecules.y[:count, i] for i, name in enumerate(TARGET_NAMES)})
    np.savez(path, **arrays)


def test_dimenet_npz_loader_on_a_fixture_in_that_format(tmp_path, qm9, monkeypatch):
    monkeypatch.setenv("DIG_CACHE_DIR", str(tmp_path / "cache"))
    _write_dimenet_npz(tmp_path / "qm9_eV.npz", qm9, 40)
    dataset = QM9()
    manifest = dataset.prepare(tmp_path / "qm9_eV.npz")
    assert manifest["source"] == "dimenet-npz" and manifest["molecules"] == 40
    loaded = QM9().load()
    assert len(loaded) == 40
    np.testing.assert_allclose(loaded.y, qm9.y[:40])
    np.testing.assert_array_equal(loaded.z, qm9.z[: qm9.ptr[40]])


def test_malformed_inputs_are_named(tmp_path, qm9):
    np.savez(tmp_path / "bad.npz", R=np.zeros((3, 3)), Z=np.ones(3))
    with pytest.raises(DataError, match="lacks arrays"):
        QM9().prepare(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="does not exist"):
        QM9().prepare(tmp_path / "missing.npz")
    (tmp_path / "broken.csv").write_text("Index,Elements\n1,x\n")
    with pytest.raises(DataError, match="columns"):
        read_qm9pack_csv([tmp_path / "broken.csv"])


def test_corrupted_cache_is_reported(tmp_path, monkeypatch, qm9):
    monkeypatch.setenv("DIG_CACHE_DIR", str(tmp_path))
    _write_dimenet_npz(tmp_path / "qm9_eV.npz", qm9, 10)
    QM9().prepare(tmp_path / "qm9_eV.npz")
    with open(tmp_path / "qm9-v1.npz", "r+b") as handle:
        handle.seek(100)
        handle.write(b"garbage")
    with pytest.raises(DataError, match="checksum"):
        QM9().load()
