"""Molecular properties, the optimisation evaluators, and the property sets (moses-250k-props, zinc250k)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import run_dig
from rdkit import Chem

from dig.data.smiles import read_moses_split
from dig.errors import DataError
from dig.tracks.generation import properties as P
from dig.tracks.generation.datasets import MosesPropertySet, Zinc250k, computed_properties
from dig.tracks.generation.optimisation import (
    best_in_corpus,
    composition_metrics,
    constrained_optimisation_metrics,
    morgan_count_similarity,
    property_optimisation_metrics,
)

# The first two rows of ZINC250k's 250k_rndm_zinc_drugs_clean_3.csv as released: smiles, logP, qed, SAS.
ZINC_ROWS = [
    ("CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1", 5.0506, 0.702012, 2.0840945),
    ("C[C@@H]1CC(Nc2cncc(-c3nncn3C)c2)C[C@@H](C)C1", 3.1137, 0.928975, 3.4320038),
]


@pytest.mark.parametrize("smiles, logp, qed, sas", ZINC_ROWS)
def test_logp_and_sa_reproduce_zinc250k_columns_and_qed_is_close(smiles, logp, qed, sas):
    mol = Chem.MolFromSmiles(smiles)
    assert P.crippen_logp(mol) == pytest.approx(logp, abs=1e-4)
    assert P.sa_score(mol) == pytest.approx(sas, abs=1e-6)
    # ZINC250k's qed column came from an older RDKit QED; today's differs by up to 0.03 on these rows.
    assert P.qed(mol) == pytest.approx(qed, abs=0.035)


def test_penalized_logp_by_hand():
    benzene, cyclodecane = Chem.MolFromSmiles("c1ccccc1"), Chem.MolFromSmiles("C1CCCCCCCCC1")
    assert P.ring_penalty(benzene) == 0 and P.ring_penalty(cyclodecane) == 4
    assert P.ring_penalty(Chem.MolFromSmiles("c1ccc2ccccc2c1")) == 0  # fused rings: two 6-cycles in the basis
    assert P.sa_score(benzene) == pytest.approx(1.0)  # the SA score is clipped to [1, 10]
    assert P.penalized_logp(benzene) == pytest.approx(1.6866 - 1.0 - 0)
    assert P.penalized_logp(cyclodecane) == pytest.approx(3.901 - 1.0 - 4)
    expected = ((1.6866 - P.ZINC_LOGP_MEAN) / P.ZINC_LOGP_STD + (-1.0 - P.ZINC_NEG_SA_MEAN) / P.ZINC_NEG_SA_STD
                + (0 - P.ZINC_NEG_RING_MEAN) / P.ZINC_NEG_RING_STD)
    assert P.penalized_logp_zinc_normalized(benzene) == pytest.approx(expected)
    table = P.property_table(["c1ccccc1", "C1CC", "C1CCCCCCCCC1"])
    assert np.isnan(table["plogp"][1]) and table["plogp"][2] == pytest.approx(-1.099)
    assert set(table) == set(P.PROPERTY_NAMES)


def test_property_optimisation_top3_over_distinct_valid_molecules():
    metrics, notes = property_optimisation_metrics(["CCO", "OCC", "C1CCCCCCCCC1", "not smiles", ""], oracle_calls=40,
                                                   train={"CCO"})
    ethanol, cyclodecane = Chem.MolFromSmiles("CCO"), Chem.MolFromSmiles("C1CCCCCCCCC1")
    assert metrics["oracle_calls_count"] == 40
    assert metrics["plogp_top1_score"] == pytest.approx(max(P.penalized_logp(ethanol), P.penalized_logp(cyclodecane)))
    assert metrics["plogp_top2_score"] == pytest.approx(min(P.penalized_logp(ethanol), P.penalized_logp(cyclodecane)))
    assert metrics["qed_top1_score"] == pytest.approx(max(P.qed(ethanol), P.qed(cyclodecane)))
    assert metrics["plogp_top3_novel_count"] == 1 and metrics["qed_top3_novel_count"] == 1
    assert "plogp_top3_score" not in metrics and notes == ["plogp_top3_score: only 2 distinct valid molecules",
                                                     "qed_top3_score: only 2 distinct valid molecules"]


def test_composition_metrics_by_hand():
    """Thresholds QED 0.45 and penalized logP -1.5: ethanol (QED 0.407, plogP -1.98) meets neither, cyclodecane
    (0.478, -1.10) both; an invalid SMILES lowers validity only; a set with no valid molecule is named."""
    ethanol, cyclodecane = Chem.MolFromSmiles("CCO"), Chem.MolFromSmiles("C1CCCCCCCCC1")
    thresholds = {"qed": 0.45, "plogp": -1.5}
    metrics, notes = composition_metrics({"composed": ["CCO", "C1CCCCCCCCC1", "C1CCCCCCCCC1", "xx"],
                                          "qed_only": ["", "xx"]}, thresholds)
    assert metrics["composed_validity_frac"] == 0.75
    assert metrics["composed_qed_mean_score"] == pytest.approx((P.qed(ethanol) + 2 * P.qed(cyclodecane)) / 3)
    assert metrics["composed_plogp_mean_score"] == pytest.approx(
        (P.penalized_logp(ethanol) + 2 * P.penalized_logp(cyclodecane)) / 3)
    assert metrics["composed_all_targets_frac"] == pytest.approx(2 / 3)
    assert metrics["qed_only_validity_frac"] == 0.0 and "qed_only_qed_mean_score" not in metrics
    assert notes == ["qed_only: no valid molecule among 2 samples"]


def test_constrained_optimisation_by_hand():
    start = "OCCO"
    same = Chem.MolFromSmiles(start)
    assert morgan_count_similarity(same, same) == 1.0
    longer = "OCCCCCCCCO"  # far more lipophilic, little alike
    close = "CCCO"
    y = {s: P.penalized_logp(Chem.MolFromSmiles(s)) for s in (start, longer, close)}
    sim = {s: morgan_count_similarity(same, Chem.MolFromSmiles(s)) for s in (longer, close)}
    assert y[longer] > y[close] > y[start]
    metrics = constrained_optimisation_metrics([start, "c1ccccc1"], [[longer, close, "bad("], ["C1CC"]],
                                               deltas=(0.0, 0.2))
    assert metrics["success_d0.0_frac"] == 0.5  # benzene's only candidate is invalid
    assert metrics["improvement_mean_d0.0_plogp"] == pytest.approx(y[longer] - y[start])
    assert metrics["improvement_std_d0.0_plogp"] == 0.0
    assert metrics["similarity_mean_d0.0_tanimoto"] == pytest.approx(sim[longer])
    at_02 = [s for s in (longer, close) if sim[s] >= 0.2]
    if at_02:
        best = max(at_02, key=lambda s: y[s])
        assert metrics["improvement_mean_d0.2_plogp"] == pytest.approx(y[best] - y[start])
    else:
        assert metrics["success_d0.2_frac"] == 0.0 and "improvement_mean_d0.2_plogp" not in metrics
    with pytest.raises(ValueError, match="2 starting molecules but 1 candidate lists"):
        constrained_optimisation_metrics(["CCO", "CCN"], [["CCC"]])


def test_properties_are_the_same_in_any_number_of_processes():
    smiles = read_moses_split("test")[:300]
    one, two = computed_properties(smiles, workers=1), computed_properties(smiles, workers=2)
    for name in P.PROPERTY_NAMES:
        np.testing.assert_array_equal(one[name], two[name])
    assert one["qed"][0] == P.qed(Chem.MolFromSmiles(smiles[0]))


def test_moses_property_set_on_a_small_real_sample(monkeypatch, tmp_path):
    monkeypatch.setenv("DIG_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(MosesPropertySet, "SIZE", 400)
    dataset = MosesPropertySet()
    data = dataset.load("smoke")
    smiles = dataset.smiles()
    assert len(smiles) == 400 and len(data.train) == 360 and len(data.valid) == 20
    picked = dataset.arrays()["moses_train_index"]
    train = read_moses_split("train")
    assert list(smiles[:5]) == [Chem.MolToSmiles(Chem.MolFromSmiles(train[i]), isomericSmiles=False)
                                for i in picked[:5]]
    table = dataset.properties()
    direct = P.molecule_properties(Chem.MolFromSmiles(smiles[7]))
    assert {name: table[name][7] for name in P.PROPERTY_NAMES} == pytest.approx(direct)
    lowest = dataset.lowest_plogp(10)
    assert [table["plogp"][list(smiles).index(s)] for s in lowest] == sorted(table["plogp"])[:10]
    top = best_in_corpus(table, smiles)
    assert top["qed"][0][1] == table["qed"].max() and len(top["plogp"]) == 3
    again = MosesPropertySet()  # from the cache, the same sample
    assert list(again.smiles()) == list(smiles)


def _zinc_fixture(path):
    """A file in ZINC250k's released format: the two real first rows, then MOSES test molecules (their columns
    computed here), each SMILES quoted with its trailing newline."""
    rows = list(ZINC_ROWS)
    for text in read_moses_split("test")[:58]:
        mol = Chem.MolFromSmiles(text)
        rows.append((text, P.crippen_logp(mol), P.qed(mol), P.sa_score(mol)))
    lines = ["smiles,logP,qed,SAS"] + [f'"{s}\n",{a},{b},{c}' for s, a, b, c in rows]
    path.write_text("\n".join(lines) + "\n")
    return rows


def test_zinc250k_is_prepared_from_its_file_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("DIG_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="dig data prepare zinc250k --from"):
        Zinc250k().load("smoke")
    source = tmp_path / "250k_rndm_zinc_drugs_clean_3.csv"
    rows = _zinc_fixture(source)
    out = run_dig("data", "prepare", "zinc250k", "--from", str(source), env={"DIG_CACHE_DIR": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr
    dataset = Zinc250k()
    data = dataset.load("smoke")
    assert len(dataset.smiles()) == 60 and len(data.valid) == 3 and len(data.train) == 54
    arrays = dataset.arrays()
    np.testing.assert_allclose(arrays["file_logP"], [r[1] for r in rows])
    np.testing.assert_allclose(arrays["logp"][:2], arrays["file_logP"][:2], atol=1e-4)
    np.testing.assert_allclose(arrays["sa"][:2], arrays["file_SAS"][:2], atol=1e-6)
    assert dataset.smiles()[0] == "CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1"
    canonical = Chem.MolToSmiles(Chem.MolFromSmiles(ZINC_ROWS[1][0]), isomericSmiles=False)
    assert dataset.smiles()[1] == canonical and "@" not in canonical  # canonical, stereo dropped
    assert [r.name for r in dataset.references("smoke")] == ["test"]
    broken = tmp_path / "broken.csv"
    broken.write_text('smiles,logP,qed,SAS\n"C1CC\n",1,0.5,2\n')
    out = run_dig("data", "prepare", "zinc250k", "--from", str(broken), env={"DIG_CACHE_DIR": str(tmp_path / "c2")})
    assert out.returncode != 0 and "1 of 1 SMILES could not be parsed" in out.stderr and "'C1CC'" in out.stderr


def test_optimisation_tasks_bench_through_the_cli(tmp_path, monkeypatch):
    """Property and constrained optimisation on a ZINC-format fixture: GraphEBM trains goal-directed and
    optimises; train-sampler picks from the data (its top-3 is the data's best); GraphDF and GraphAF fine-tune by
    PPO for property and constrained optimisation (their oracle calls counted); CharRNN is refused with the reason."""
    env = {"DIG_CACHE_DIR": str(tmp_path / "cache")}
    monkeypatch.setenv("DIG_CACHE_DIR", env["DIG_CACHE_DIR"])
    source = tmp_path / "250k_rndm_zinc_drugs_clean_3.csv"
    _zinc_fixture(source)
    assert run_dig("data", "prepare", "zinc250k", "--from", str(source), env=env).returncode == 0
    out = run_dig("bench", "--track", "generation", "--budget", "smoke", "--seeds", "0",
                  "--datasets", "zinc250k-plogp-opt,zinc250k-plogp-constrained", "--models", "graphebm,train-sampler",
                  "--out", str(tmp_path / "out"), "--workers", "1", env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = {}
    with open(tmp_path / "out" / "generation.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            rows[(row["dataset"], row["model"], row["metric"])] = float(row["value"])
    dataset = Zinc250k()
    train_best = np.sort(dataset.train_values("smoke", "plogp"))[::-1][:3]
    for rank, value in enumerate(train_best, start=1):
        assert rows[("zinc250k-plogp-opt", "train-sampler", f"plogp_top{rank}_score")] == pytest.approx(value)
    assert rows[("zinc250k-plogp-opt", "train-sampler", "plogp_top3_novel_count")] == 0
    assert ("zinc250k-plogp-opt", "graphebm", "oracle_calls_count") in rows
    for model in ("graphebm", "train-sampler"):
        assert 0 <= rows[("zinc250k-plogp-constrained", model, "success_d0.0_frac")] <= 1
    assert rows[("zinc250k-plogp-constrained", "train-sampler", "success_d0.0_frac")] == 1.0
    tuned = run_dig("bench", "--track", "generation", "--budget", "smoke", "--seeds", "0", "--datasets",
                    "zinc250k-qed-opt,zinc250k-plogp-constrained", "--models", "graphdf,graphaf",
                    "--out", str(tmp_path / "out2"), env=env, timeout=600)
    assert tuned.returncode == 0, tuned.stderr
    records = [json.loads(path.read_text()) for path in (tmp_path / "out2" / "generation").glob("*.json")]
    assert sorted((r["dataset"], r["model"]) for r in records) == [
        ("zinc250k-plogp-constrained", "graphaf"), ("zinc250k-plogp-constrained", "graphdf"),
        ("zinc250k-qed-opt", "graphaf"), ("zinc250k-qed-opt", "graphdf")]
    for record in records:
        metrics = {m["name"]: m["value"] for m in record["metrics"]}
        assert record["status"] == "ok", record
        assert record["extra"]["optimiser_oracle_calls"] == 2 * 8 and len(record["extra"]["finetune_history"]) == 2
        assert metrics["oracle_calls_count"] >= 2 * 8
        if record["dataset"] == "zinc250k-qed-opt":
            assert 0 < metrics["qed_top1_score"] <= 1
            top = record["extra"]["top_molecules"]
            assert top[0][1] == metrics["qed_top1_score"]
            assert P.qed(Chem.MolFromSmiles(top[0][0])) == pytest.approx(top[0][1])
        else:
            assert 0 <= metrics["success_d0.0_frac"] <= 1 and "success_d0.6_frac" in metrics
    refused = run_dig("bench", "--track", "generation", "--budget", "smoke", "--seeds", "0", "--datasets",
                      "zinc250k-plogp-constrained", "--models", "char-rnn", "--out", str(tmp_path / "out3"), env=env)
    assert refused.returncode != 0 and "cannot optimise here" in refused.stderr and "CharRNN" in refused.stderr


def test_composition_task_benches_through_the_cli(tmp_path, monkeypatch):
    """GraphEBM trains a QED and a penalized-logP energy, composes them and samples from the sum and from each;
    train-sampler's composed set is training molecules (the floor); the flows are refused with the reason."""
    env = {"DIG_CACHE_DIR": str(tmp_path / "cache")}
    monkeypatch.setenv("DIG_CACHE_DIR", env["DIG_CACHE_DIR"])
    source = tmp_path / "250k_rndm_zinc_drugs_clean_3.csv"
    _zinc_fixture(source)
    assert run_dig("data", "prepare", "zinc250k", "--from", str(source), env=env).returncode == 0
    out = run_dig("bench", "--track", "generation", "--budget", "smoke", "--seeds", "0", "--datasets",
                  "zinc250k-qed-plogp-composition", "--models", "graphebm,train-sampler",
                  "--out", str(tmp_path / "out"), "--workers", "1", env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    records = {r["model"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / "out" / "generation").glob("*.json"))}
    ebm = {m["name"]: m["value"] for m in records["graphebm"]["metrics"]}
    for part in ("composed", "qed_only", "plogp_only"):
        assert 0 <= ebm[f"{part}_validity_frac"] <= 1
    assert set(records["graphebm"]["extra"]["history"]) == {"qed", "plogp"}
    dataset = Zinc250k()
    medians = {k: float(np.median(dataset.train_values("smoke", k))) for k in ("qed", "plogp")}
    assert records["graphebm"]["extra"]["thresholds"] == pytest.approx(medians)
    floor = {m["name"]: m["value"] for m in records["train-sampler"]["metrics"]}
    assert floor["composed_validity_frac"] == 1.0 and 0 < floor["composed_all_targets_frac"] < 1
    refused = run_dig("bench", "--track", "generation", "--budget", "smoke", "--seeds", "0", "--datasets",
                      "zinc250k-qed-plogp-composition", "--models", "graphdf", "--out", str(tmp_path / "o2"), env=env)
    assert refused.returncode != 0 and "composition adds energies" in refused.stderr
