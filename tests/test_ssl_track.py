"""The ssl track's methods and its end-to-end bench at the smoke budget."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from conftest import run_dig

from dig.tracks.ssl.datasets import FreeSolvTask, SolubilityTask
from dig.tracks.ssl.graphs import collate
from dig.tracks.ssl.methods import (
    GraphCL,
    InfoGraph,
    MVGRLGraph,
    RandomEncoder,
    SupervisedGraph,
    merge_per_graph,
)
from dig.tracks.ssl.views import NodeDropping, Subgraph

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def solubility_graphs():
    return SolubilityTask().load()


def test_datasets_merge_repeats_and_drop_conflicting_stereo_pairs(solubility_graphs):
    assert len(solubility_graphs.graphs) == 1273 and solubility_graphs.deduplication == {"merged": 7, "dropped_conflicting": 2}
    # files: low 417 + 102, medium 402 + 115, high 206 + 40; merged repeats: 5 low, 2 medium; dropped: the
    # pair CCC(C)(O)C(C)C labelled high in train and medium in test
    assert np.bincount(solubility_graphs.labels).tolist() == [519 - 5, 517 - 2 - 1, 246 - 1]
    freesolv = FreeSolvTask().load()
    assert len(freesolv.graphs) == 639 and freesolv.task == "regression" and freesolv.unit == "kcal_per_mol"


def test_merge_per_graph_takes_each_graph_from_its_chosen_view(solubility_graphs):
    batch = collate(solubility_graphs.graphs[:10])
    views = [NodeDropping(0.3)(batch, torch.Generator().manual_seed(1)), Subgraph(0.3)(batch, torch.Generator().manual_seed(2))]
    choice = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 0, 1])
    merged = merge_per_graph(views, choice)
    assert merged.num_graphs == 10
    for g in range(10):
        source = views[int(choice[g])]
        lo, hi = int(source.ptr[g]), int(source.ptr[g + 1])
        mlo, mhi = int(merged.ptr[g]), int(merged.ptr[g + 1])
        assert torch.equal(merged.x[mlo:mhi], source.x[lo:hi])
        source_edges = source.edge_index[:, (source.edge_index[0] >= lo) & (source.edge_index[0] < hi)] - lo
        merged_edges = merged.edge_index[:, (merged.edge_index[0] >= mlo) & (merged.edge_index[0] < mhi)] - mlo
        assert sorted(map(tuple, source_edges.t().tolist())) == sorted(map(tuple, merged_edges.t().tolist()))


@pytest.mark.parametrize("method", [GraphCL, InfoGraph, MVGRLGraph])
def test_methods_pretrain_and_embed_reproducibly(method, solubility_graphs):
    graphs = solubility_graphs.graphs[:96]
    runs = []
    for _ in range(2):
        model = method(solubility_graphs.in_features, hidden=8, layers=2, epochs=1, batch_size=32, lr=0.01)
        before = [p.detach().clone() for p in model.encoder.parameters()]
        history = model.pretrain(graphs, seed=5)
        assert history["steps"] == 3 and all(np.isfinite(history["loss"]))
        assert any(not torch.equal(a, b) for a, b in zip(before, model.encoder.parameters(), strict=True))
        runs.append(model.embed(graphs))
    assert runs[0].shape == (96, 16)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_mvgrl_diffusion_view_is_the_dense_ppr_product(solubility_graphs):
    """The diffusion encoder's first layer on a batch equals PReLU(S X W + b) per graph with S the graph's
    closed-form PPR matrix; the embedding is the sum of the two views' readouts."""
    from dig.tracks.ssl.views import batch_ppr_diffusion, ppr_diffusion

    graphs = solubility_graphs.graphs[:5]
    batch = collate(graphs)
    edges, weight = batch_ppr_diffusion(batch, 0.2)
    model = MVGRLGraph(solubility_graphs.in_features, hidden=8, layers=1)
    model.initialise(0)
    conv, act = model.diffusion_encoder.convs[0], model.diffusion_encoder.acts[0]
    with torch.no_grad():
        _, nodes = model.diffusion_encoder(batch, edges, weight)
        for g, (x, edge_index) in enumerate(graphs):
            s = ppr_diffusion(edge_index, x.size(0), 0.2)
            expected = act(s @ conv.lin(x) + conv.bias)
            torch.testing.assert_close(nodes[int(batch.ptr[g]):int(batch.ptr[g + 1])], expected, rtol=1e-5, atol=1e-6)
        (adjacency, _), (diffusion, _) = model._views(batch)
    np.testing.assert_allclose(model.embed(graphs), (adjacency + diffusion).numpy(), rtol=1e-6)


def test_supervised_graph_trains_per_outer_fold_and_never_sees_its_test_fold(solubility_graphs, monkeypatch):
    from dig.tracks.ssl.probe import outer_splits

    rows = np.concatenate([np.flatnonzero(solubility_graphs.labels == c)[:20] for c in range(3)])
    graphs, labels = [solubility_graphs.graphs[i] for i in rows], solubility_graphs.labels[rows]
    model = SupervisedGraph(solubility_graphs.in_features, hidden=8, layers=2, steps=4, eval_every=2, batch_size=16)
    seen = []
    train_fold = SupervisedGraph._train_fold

    def spy(self, graphs_, labels_, task, train, val, seed):
        seen.append((set(train.tolist()), set(val.tolist())))
        return train_fold(self, graphs_, labels_, task, train, val, seed)

    monkeypatch.setattr(SupervisedGraph, "_train_fold", spy)
    score = model.cross_validate(graphs, labels, "classification", seed=3, folds=3)
    folds = outer_splits(labels, "classification", 3, 3)
    assert len(seen) == 3 and len(score.folds) == 3 and score.metric == "accuracy_frac"
    for (train, val), (outer_train, outer_test) in zip(seen, folds, strict=True):
        assert not (train | val) & set(outer_test.tolist())
        assert train | val == set(outer_train.tolist()) and not train & val and len(val) == 4
    assert set(score.chosen) <= {2.0, 4.0}
    again = SupervisedGraph(solubility_graphs.in_features, hidden=8, layers=2, steps=4, eval_every=2, batch_size=16)
    assert again.cross_validate(graphs, labels, "classification", seed=3, folds=3).folds == score.folds
    regression = SupervisedGraph(solubility_graphs.in_features, hidden=8, layers=2, steps=4, eval_every=2,
                                 batch_size=16).cross_validate(graphs, labels.astype(float) * 2.5, "regression",
                                                               seed=3, folds=3, unit="kcal_per_mol")
    assert regression.metric == "mae_kcal_per_mol" and all(np.isfinite(regression.folds))


def test_random_encoder_is_untrained_and_seeded(solubility_graphs):
    graphs = solubility_graphs.graphs[:20]
    a, b, c = (RandomEncoder(solubility_graphs.in_features, hidden=8, layers=2) for _ in range(3))
    assert a.pretrain(graphs, 1)["steps"] == 0
    b.pretrain(graphs, 1)
    c.pretrain(graphs, 2)
    np.testing.assert_array_equal(a.embed(graphs), b.embed(graphs))
    assert not np.array_equal(a.embed(graphs), c.embed(graphs))


def test_nan_loss_names_the_method_and_the_fix(solubility_graphs):
    model = InfoGraph(solubility_graphs.in_features, hidden=8, layers=2, epochs=1, batch_size=32, lr=0.01)
    graphs = list(solubility_graphs.graphs[:64])
    x, edges = graphs[3]
    graphs[3] = (torch.full_like(x, float("nan")), edges)
    with pytest.raises(FloatingPointError, match="InfoGraph: the training loss became nan.*node features for NaN/inf"):
        model.pretrain(graphs, seed=0)


def test_bench_ssl_smoke_end_to_end(tmp_path):
    out = tmp_path / "results"
    run = run_dig("bench", "--track", "ssl", "--budget", "smoke", "--seeds", "0", "--datasets", "solubility,freesolv",
                  "--models", "random-encoder,graphcl,mvgrl,supervised", "--out", str(out), "--quiet", "--workers", "1",
                  cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "ssl.csv")))
    metrics = {(r["dataset"], r["model"], r["metric"]) for r in rows}
    for model in ("random-encoder", "graphcl", "mvgrl", "supervised"):
        assert ("solubility", model, "accuracy_frac") in metrics
        assert ("freesolv", model, "mae_kcal_per_mol") in metrics
    accuracy = [float(r["value"]) for r in rows if r["metric"] == "accuracy_frac" and r["model"] != "supervised"]
    assert all(0.4 < a <= 1.0 for a in accuracy)  # 3 classes, majority 41 % (supervised: 2 steps at smoke)
    records = [json.loads(path.read_text()) for path in (out / "ssl").glob("*.json")]
    assert len(records) == 8 and all(len(r["extra"]["fold_scores"]) == 10 for r in records), records[0].keys()
    supervised = [r for r in records if r["model"] == "supervised"]
    assert all(len(r["extra"]["chosen_step"]) == 10 for r in supervised)


def test_moses_pretraining_sample_is_a_fixed_sample_of_moses_train():
    from rdkit import Chem

    from dig.data.cache import load_or_build
    from dig.data.molgraph import ELEMENTS
    from dig.data.smiles import read_moses_split
    from dig.tracks.ssl.datasets import MOSES_PRETRAINING_SAMPLE, MosesPretrainingSample

    sample = MosesPretrainingSample()
    arrays, manifest = load_or_build(sample.cache_name, sample._build)
    rows = arrays["moses_train_index"]
    train = read_moses_split("train")
    np.testing.assert_array_equal(rows, np.sort(np.random.RandomState(0).permutation(len(train))[:MOSES_PRETRAINING_SAMPLE]))
    smiles = bytes(arrays["smiles_utf8"]).decode("utf-8").split("\n")
    assert smiles == [train[r] for r in rows] and manifest["sample"] == MOSES_PRETRAINING_SAMPLE == 12_800
    elements = {atom.GetAtomicNum() for s in smiles[:2_000] for atom in Chem.MolFromSmiles(s).GetAtoms()}
    assert elements <= set(ELEMENTS)  # no atom falls into the featurisation's "other" element


def test_transfer_pretrains_on_the_source_molecules_and_probes_the_target_unchanged(monkeypatch):
    from dig.plugins import load_plugins
    from dig.tracks.ssl.track import SSLTrack

    registry = load_plugins().registry
    dataset = registry.get("dataset", "moses-to-freesolv", track="ssl")
    target = FreeSolvTask().load()
    source = SolubilityTask().load().graphs[:64]  # stands in for the MOSES sample: other molecules than the target's

    class Source:
        cache_name = "test-source"

        def graphs(self):
            return source

    monkeypatch.setattr(dataset.obj, "source", Source())
    loaded = dataset.obj.load()
    assert np.array_equal(loaded.labels, target.labels) and loaded.task == "regression"
    assert len(loaded.graphs) == len(target.graphs) and all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(loaded.graphs, target.graphs, strict=True))
    seen = []
    pretrain = GraphCL.pretrain

    def spy(self, graphs, seed, on_epoch=None):
        seen.append(graphs)
        return pretrain(self, graphs, seed, on_epoch)

    monkeypatch.setattr(GraphCL, "pretrain", spy)
    track, model = SSLTrack(), registry.get("model", "graphcl", track="ssl")
    assert track.unsuited(dataset, model, "smoke") is None
    for baseline in ("random-encoder", "supervised"):
        reason = track.unsuited(dataset, registry.get("model", baseline, track="ssl"), "smoke")
        assert reason and "does not pre-train" in reason and "freesolv" in reason
    outcome = track.run_job(registry, dataset, model, 0, track.job_config(dataset, model, "smoke", {}))
    assert len(seen) == 1 and seen[0] is source  # pre-trained on the source alone, never on the probed molecules
    assert [m.name for m in outcome.metrics] == ["mae_kcal_per_mol"] and len(outcome.extra["fold_scores"]) == 10
