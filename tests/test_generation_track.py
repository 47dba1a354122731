"""The generation track end to end through the CLI (smoke budget, QM9), with the train-sampler baseline and a
plugin generator that emits nothing valid."""

import csv
import json

from conftest import make_plugin_dist, run_dig

from dig.tracks.generation.baselines import build_train_sampler

INVALID_GENERATOR = """
from dig.plugins import hookimpl

class Garbage:
    def fit(self, train, valid, seed, on_epoch=None):
        return {"epochs": 1}

    def sample(self, count, seed):
        return ["C1CC"] * count  # an unclosed ring: never parses

@hookimpl
def dig_register(registry):
    registry.add_model("garbage", lambda vocabulary, max_atoms: Garbage(), track="generation", summary="invalid")
"""


def test_train_sampler_draws_training_molecules_deterministically():
    sampler = build_train_sampler(None, 9)
    sampler.fit(["C", "CC", "CCC", "CCO"], [], seed=0)
    first = sampler.sample(3, seed=1)
    assert first == sampler.sample(3, seed=1) and len(set(first)) == 3 and set(first) <= {"C", "CC", "CCC", "CCO"}
    assert len(sampler.sample(10, seed=0)) == 10  # more than the training set: with replacement


def test_generation_bench_through_the_cli(tmp_path):
    site = make_plugin_dist(tmp_path / "site", "garbage-generator", "garbage", "garbage_generator", INVALID_GENERATOR)
    out = run_dig("bench", "--track", "generation", "--datasets", "qm9-smiles", "--models", "train-sampler,garbage,graphdf,graphaf,char-rnn,graphebm",
                  "--seeds", "0", "--budget", "smoke", "--quiet", "--out", str(tmp_path / "out"), extra_path=site,
                  timeout=600)
    assert out.returncode == 0, out.stderr
    records = {r["model"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / "out" / "generation").glob("*.json"))}
    sampler = {m["name"]: m["value"] for m in records["train-sampler"]["metrics"]}
    assert sampler["validity_frac"] == 1.0 and sampler["novelty_frac"] == 0.0 and sampler["unique_frac"] == 1.0
    assert {"fcd_test_dist", "snn_test_sim", "frag_test_sim", "intdiv1_div", "filters_frac"} <= set(sampler)
    # 200 samples against a 1,000-molecule reference (smoke): measured FCD 2.1, Frag 0.81; both improve with size
    assert 0.0 <= sampler["fcd_test_dist"] < 4.0 and sampler["frag_test_sim"] > 0.7
    garbage = {m["name"]: m["value"] for m in records["garbage"]["metrics"]}
    assert garbage["validity_frac"] == 0.0 and "novelty_frac" not in garbage
    assert "no valid molecule" in records["garbage"]["extra"]["reason"]
    graphdf = {m["name"]: m["value"] for m in records["graphdf"]["metrics"]}
    assert graphdf["validity_frac"] == 1.0  # valency masks: every sample is a molecule
    assert 0.0 <= graphdf["validity_without_check_frac"] <= 1.0 and records["graphdf"]["params"] > 0
    assert records["graphdf"]["extra"]["history"]["steps"] == 5
    graphaf = {m["name"]: m["value"] for m in records["graphaf"]["metrics"]}
    assert graphaf["validity_frac"] == 1.0 and 0.0 <= graphaf["validity_without_check_frac"] <= 1.0
    assert records["graphaf"]["extra"]["history"]["steps"] == 5 and records["graphaf"]["params"] > 0
    assert records["char-rnn"]["extra"]["history"]["steps"] == 5 and records["char-rnn"]["params"] > 0
    graphebm = {m["name"]: m["value"] for m in records["graphebm"]["metrics"]}
    assert records["graphebm"]["extra"]["history"]["steps"] == 3 and 0.0 <= graphebm["validity_frac"] <= 1.0
    assert "validity_without_check_frac" in graphebm
    with open(tmp_path / "out" / "generation.csv", newline="") as handle:
        ok = {r["model"] for r in csv.DictReader(handle) if r["status"] == "ok"}
    assert ok == {"train-sampler", "garbage", "graphdf", "graphaf", "char-rnn", "graphebm"}
