"""`dig bench` end to end in a temp dir: records, the CSV schema, resume after a kill, failures, executors."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import make_plugin_dist, run_dig

from dig.runner.records import COLUMNS

SMOKE = ("bench", "--track", "3d", "--datasets", "qm9", "--budget", "smoke", "--quiet")

NAN_PLUGIN = """
import torch
from dig.plugins import hookimpl

class NanModel(torch.nn.Module):
    def __init__(self, stats):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(len(stats.targets)))

    def forward(self, batch):
        return self.w * float("nan") * batch.pos.sum()

@hookimpl
def dig_register(registry):
    registry.add_model("nanmodel", NanModel, track="3d", summary="always NaN")
"""


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = run_dig(*SMOKE, "--models", "mean,schnet", "--seeds", "0,1", "--out", str(out))
    return out, result


def test_smoke_bench_writes_records_and_a_csv_of_the_schema(smoke_run):
    out, result = smoke_run
    assert result.returncode == 0, result.stderr
    records = sorted((out / "3d").glob("*.json"))
    assert len(records) == 4
    rows = _rows(out / "3d.csv")
    assert tuple(rows[0].keys()) == COLUMNS
    assert {r["status"] for r in rows} == {"ok"}
    test_u0 = {(r["model"], r["seed"]): float(r["value"]) for r in rows if r["split"] == "test" and r["metric"] == "U0_mae_meV"}
    assert set(test_u0) == {("mean", "0"), ("mean", "1"), ("schnet", "0"), ("schnet", "1")}
    assert {r["unit"] for r in rows if r["metric"] == "homo_mae_meV"} == {"meV"}
    assert {r["split"] for r in rows} == {"valid", "test"}
    schnet = next(r for r in rows if r["model"] == "schnet")
    assert int(schnet["params"]) > 1000 and int(schnet["epochs"]) == 2 and schnet["torch_version"]
    record = json.loads(records[0].read_text())
    assert record["config"]["split"] == {"train": 256, "valid": 64, "test": 128}


def test_rerun_skips_finished_jobs(smoke_run):
    out, _ = smoke_run
    before = {p.name: p.read_text() for p in (out / "3d").glob("*.json")}
    again = run_dig(*SMOKE, "--models", "mean,schnet", "--seeds", "0,1", "--out", str(out))
    assert again.returncode == 0
    assert "4 jobs (4 already finished)" in " ".join(again.stdout.split())
    assert {p.name: p.read_text() for p in (out / "3d").glob("*.json")} == before


def test_same_seed_gives_the_same_numbers(smoke_run, tmp_path):
    out, _ = smoke_run
    again = run_dig(*SMOKE, "--models", "schnet", "--seeds", "1", "--out", str(tmp_path))
    assert again.returncode == 0
    first = {(r["split"], r["metric"]): r["value"] for r in _rows(out / "3d.csv") if r["model"] == "schnet" and r["seed"] == "1"}
    second = {(r["split"], r["metric"]): r["value"] for r in _rows(tmp_path / "3d.csv")}
    assert first == second


def test_killed_bench_resumes_without_redoing_finished_jobs(tmp_path):
    env_cmd = [sys.executable, "-m", "dig", *SMOKE, "--models", "schnet", "--seeds", "0,1,2,3,4,5", "--out", str(tmp_path)]
    process = subprocess.Popen(env_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    folder = tmp_path / "3d"
    deadline = time.time() + 240
    while time.time() < deadline and not list(folder.glob("*.json")):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # Only the bench is killed. Its workers die with it (parent-death signal), but a worker may finish its job
    # and write the record in the moment before that; the folder is read once every process of the session is gone.
    deadline = time.time() + 30
    while time.time() < deadline and _group_alive(process.pid):
        time.sleep(0.05)
    assert not _group_alive(process.pid), "a worker outlived the killed bench by 30 s"
    done = {p.name: p.read_text() for p in folder.glob("*.json")}
    assert 1 <= len(done) < 6, "the kill should land between jobs"
    resumed = run_dig(*SMOKE, "--models", "schnet", "--seeds", "0,1,2,3,4,5", "--out", str(tmp_path))
    assert resumed.returncode == 0, resumed.stderr
    assert f"6 jobs ({len(done)} already finished)" in " ".join(resumed.stdout.split())
    after = {p.name: p.read_text() for p in folder.glob("*.json")}
    assert len(after) == 6 and all(after[name] == text for name, text in done.items())
    assert not list(folder.glob(".*.tmp")), "no half-written files"


def test_nan_loss_becomes_a_failed_record_and_others_go_on(tmp_path):
    site = make_plugin_dist(tmp_path / "site", "nan-dist", "nanplug", "nan_plugin", NAN_PLUGIN)
    out = run_dig(*SMOKE, "--models", "nanmodel,mean", "--seeds", "0", "--out", str(tmp_path / "res"), extra_path=site)
    assert out.returncode == 1
    assert "nanmodel" in out.stderr and "loss became nan" in out.stderr
    rows = _rows(tmp_path / "res" / "3d.csv")
    assert {(r["model"], r["status"]) for r in rows} == {("nanmodel", "failed"), ("mean", "ok")}
    record = next(json.loads(p.read_text()) for p in (tmp_path / "res" / "3d").glob("*.json")
                  if json.loads(p.read_text())["model"] == "nanmodel")
    assert "lower the learning rate" in record["reason"]


def test_unknown_names_are_reported_with_close_matches(tmp_path):
    out = run_dig(*SMOKE, "--models", "schnett", "--out", str(tmp_path))
    assert out.returncode == 2 and "did you mean 'schnet'" in out.stderr
    out = run_dig(*SMOKE, "--datasets", "qm8", "--out", str(tmp_path))
    assert out.returncode == 2 and "unknown dataset 'qm8'" in out.stderr
    out = run_dig(*SMOKE, "--targets", "U1", "--out", str(tmp_path))
    assert out.returncode == 2 and "U1" in out.stderr


def test_process_pool_executor(tmp_path):
    out = run_dig(*SMOKE, "--models", "mean,schnet", "--seeds", "0", "--workers", "2", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert {r["status"] for r in _rows(tmp_path / "3d.csv")} == {"ok"}
    assert len(list((tmp_path / "3d").glob("*.json"))) == 2


def test_submitit_local_executor(tmp_path):
    pytest.importorskip("submitit")
    out = run_dig(*SMOKE, "--models", "mean", "--seeds", "0,1", "--executor", "submitit",
                  "--submitit-cluster", "local", "--workers", "2", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = _rows(tmp_path / "3d.csv")
    assert {r["seed"] for r in rows} == {"0", "1"} and {r["status"] for r in rows} == {"ok"}


def test_example_plugin_installed_with_pip_runs_through_bench(egnn_installed, tmp_path):
    listing = run_dig("list", "--kind", "model")
    line = next(line for line in listing.stdout.splitlines() if "egnn" in line)
    assert "egnn" in line.split("│")[3]  # the plugin column names the plugin
    out = run_dig(*SMOKE, "--models", "egnn,mean", "--seeds", "0", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = _rows(tmp_path / "3d.csv")
    assert {(r["model"], r["plugin"]) for r in rows} == {("egnn", "egnn"), ("mean", "threed")}
