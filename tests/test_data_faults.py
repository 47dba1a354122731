"""Bad data files and caches (issue 16, faults 5 and 9): each is refused with a message naming the array, the
index or the file, and the fix; never a traceback, and never the advice to allow pickles."""

import errno
import json

import numpy as np
import pytest
from conftest import run_dig

from dig.data import cache
from dig.errors import DataError
from dig.tracks.threed.qm9 import QM9

# MD17's smoke split needs time blocks 500 frames (250 fs at 0.5 fs) apart: 64 / 32 / 64 frames after the gaps
FRAMES = 1_600


@pytest.fixture(scope="module")
def frames():
    """An MD17-format trajectory of a real QM9 molecule (9 atoms), slightly displaced, in kcal/mol and Å."""
    molecules = QM9().load()
    start, stop = molecules.ptr[20], molecules.ptr[21]
    pos = molecules.pos[start:stop].astype(np.float64)
    rng = np.random.RandomState(0)
    R = pos[None] + 0.02 * rng.randn(FRAMES, len(pos), 3)
    return {"R": R, "z": molecules.z[start:stop].astype(np.uint8), "E": rng.randn(FRAMES, 1), "F": rng.randn(*R.shape)}


def _prepare(tmp_path, arrays, name="md17.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return run_dig("data", "prepare", "md17-ethanol", "--from", str(path), env={"DIG_CACHE_DIR": str(tmp_path / "c")})


def _said(out):
    return " ".join(out.stderr.split())


@pytest.mark.parametrize("change, message", [
    (lambda a: a["R"].__setitem__((3, 2, 1), np.nan), "md17.npz: R[[3, 2, 1]] = nan"),
    (lambda a: a["E"].__setitem__((5, 0), np.nan), "md17.npz: E[[5, 0]] = nan"),
    (lambda a: a["F"].__setitem__((0, 4, 2), np.inf), "md17.npz: F[[0, 4, 2]] = inf"),
    (lambda a: a.__setitem__("z", np.array([6, 200, *a["z"][2:]], dtype=np.int64)), "z[1] = 200 is not an atomic number"),
    (lambda a: a.__setitem__("R", a["R"] / 10.0), "positions must be in Å (a length in nm"),
])
def test_prepare_refuses_bad_values(tmp_path, frames, change, message):
    arrays = {key: value.copy() for key, value in frames.items()}
    change(arrays)
    out = _prepare(tmp_path, arrays)
    assert out.returncode == 2 and message in _said(out) and "Traceback" not in out.stderr
    assert not (tmp_path / "c" / "md17-ethanol-v1.npz").exists(), "nothing is cached from a bad file"


def test_a_good_file_prepares_and_validates(tmp_path, frames):
    assert _prepare(tmp_path, frames).returncode == 0
    out = run_dig("data", "validate", "md17-ethanol", "--budget", "smoke", env={"DIG_CACHE_DIR": str(tmp_path / "c")})
    assert out.returncode == 0 and "ok for the smoke budget" in out.stdout


def test_files_that_are_no_npz_archive_are_named(tmp_path, frames):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    single = tmp_path / "single.npz"
    with open(single, "wb") as handle:
        np.save(handle, frames["R"])
    text = tmp_path / "text.npz"
    text.write_text("R,z,E,F\n1,2,3,4\n")
    objects = tmp_path / "objects.npz"
    np.savez(objects, **{**frames, "E": np.array([{"energy": 1.0}] * FRAMES, dtype=object)})
    cases = {empty: "is empty", single: "is a single .npy array, not an .npz archive", text: "is not an .npz archive",
             objects: "array 'E' holds Python objects; dig reads numeric arrays only", tmp_path: "is not a file"}
    for path, message in cases.items():
        out = run_dig("data", "prepare", "md17-ethanol", "--from", str(path), env={"DIG_CACHE_DIR": str(tmp_path / "c")})
        said = _said(out)
        assert out.returncode == 2 and message in said, (path, said)
        assert "allow_pickle" not in said and "Traceback" not in out.stderr


def test_a_damaged_cache_manifest_is_named_with_the_fix(tmp_path, frames):
    assert _prepare(tmp_path, frames).returncode == 0
    manifest = tmp_path / "c" / "md17-ethanol-v1.json"
    for content in ("", "{not json", "[1, 2]"):
        manifest.write_text(content)
        out = run_dig("data", "validate", "md17-ethanol", env={"DIG_CACHE_DIR": str(tmp_path / "c")})
        said = _said(out)
        assert out.returncode == 2 and "is damaged or empty; delete" in said and "Traceback" not in out.stderr


def test_an_unusable_cache_folder_is_named_with_the_fix(tmp_path, frames, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    np.savez(tmp_path / "md17.npz", **frames)
    out = run_dig("data", "prepare", "md17-ethanol", "--from", str(tmp_path / "md17.npz"),
                  env={"DIG_CACHE_DIR": str(blocker / "cache")})
    assert out.returncode == 2 and "cannot write the dataset cache" in _said(out) and "DIG_CACHE_DIR" in out.stderr

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv("DIG_CACHE_DIR", str(tmp_path / "full"))
    monkeypatch.setattr(cache.np, "savez", full)
    with pytest.raises(DataError, match="the disk is full"):
        cache.save_cached_arrays("x", {"a": np.zeros(3)}, {})
    assert not list((tmp_path / "full").glob("*.tmp")) and json.dumps({}) == "{}"
