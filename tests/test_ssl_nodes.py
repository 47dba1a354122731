"""The ssl track's node level: CSBM and karate-club data, GRACE's views, DGI/GRACE/supervised, the node probe."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from conftest import row_spy, run_dig

from dig.tracks.ssl.graphs import GraphBatch
from dig.tracks.ssl.node_datasets import CSBMTask, KarateClubTask, csbm
from dig.tracks.ssl.node_methods import DGI, GRACE, RandomNodeEncoder, SupervisedNodeEncoder
from dig.tracks.ssl.protocol import Supervision
from dig.tracks.ssl.views import EdgeRemoving, FeatureMasking

pytest.importorskip("sklearn")


@pytest.mark.parametrize("homophily", [0.8, 0.2])
def test_csbm_has_the_stated_degree_homophily_and_feature_signal(homophily):
    x, edge_index, labels = csbm(nodes=1000, degree=10.0, homophily=homophily, signal=1.0, features=32, seed=3)
    src, dst = edge_index
    assert edge_index.size(1) % 2 == 0 and not bool((src == dst).any())
    assert 9.0 < edge_index.size(1) / 1000 < 11.0  # mean degree (both directions counted once per endpoint)
    same = float((labels[src.numpy()] == labels[dst.numpy()]).mean())
    assert abs(same - homophily) < 0.04
    assert np.bincount(labels).tolist() == [500, 500]
    gap = x[torch.as_tensor(labels == 1)].mean(0) - x[torch.as_tensor(labels == 0)].mean(0)
    assert 0.8 < float(gap.norm()) < 1.4  # class means 1 apart, plus sampling noise of ~ sqrt(32 * 2 / 500)
    again = csbm(nodes=1000, degree=10.0, homophily=homophily, signal=1.0, features=32, seed=3)
    assert torch.equal(again[0], x) and torch.equal(again[1], edge_index)


def test_csbm_refuses_impossible_settings():
    with pytest.raises(ValueError, match="homophily"):
        csbm(homophily=1.5)
    with pytest.raises(ValueError, match="edge probability above 1"):
        csbm(nodes=20, degree=15.0, homophily=0.9)


def test_node_tasks_have_disjoint_fixed_splits():
    task = CSBMTask("csbm-homophilous", 0.8, 1).load()
    sets = [set(task.train.tolist()), set(task.val.tolist()), set(task.test.tolist())]
    assert [len(s) for s in sets] == [40, 200, 760] and not (sets[0] & sets[1] or sets[2] & (sets[0] | sets[1]))
    assert np.bincount(task.labels[task.train]).tolist() == [20, 20]
    karate = KarateClubTask().load()
    assert (karate.x.shape, karate.edge_index.size(1)) == ((34, 34), 156)
    assert (len(karate.train), len(karate.val), len(karate.test)) == (4, 10, 20)


def test_karate_club_matches_pyg():
    datasets = pytest.importorskip("torch_geometric.datasets")
    reference = datasets.KarateClub()[0]
    ours = KarateClubTask().load()
    assert ours.labels.tolist() == reference.y.tolist()
    assert {tuple(e) for e in ours.edge_index.t().tolist()} == {tuple(e) for e in reference.edge_index.t().tolist()}
    assert ours.train.tolist() == reference.train_mask.nonzero().squeeze(1).tolist()
    assert torch.equal(ours.x, reference.x)


def _one_graph_batch(nodes: int = 200, features: int = 50) -> GraphBatch:
    x, edge_index, _ = csbm(nodes=nodes, degree=8.0, homophily=0.5, features=features, seed=0)
    return GraphBatch(x, edge_index, torch.tensor([0, nodes]))


def test_edge_removing_drops_directed_edges_at_its_rate_and_keeps_nodes():
    batch = _one_graph_batch()
    view = EdgeRemoving(0.4)(batch, torch.Generator().manual_seed(0))
    assert torch.equal(view.x, batch.x) and torch.equal(view.ptr, batch.ptr)
    kept = {tuple(e) for e in view.edge_index.t().tolist()}
    assert kept <= {tuple(e) for e in batch.edge_index.t().tolist()}
    assert abs(len(kept) / batch.edge_index.size(1) - 0.6) < 0.06


def test_feature_masking_zeroes_whole_columns_at_its_rate():
    batch = _one_graph_batch(features=200)
    batch = GraphBatch(batch.x + 5.0, batch.edge_index, batch.ptr)  # no feature is zero by chance
    view = FeatureMasking(0.3)(batch, torch.Generator().manual_seed(0))
    zero_columns = (view.x == 0).all(0)
    assert torch.equal(view.edge_index, batch.edge_index)
    assert torch.equal(view.x[:, ~zero_columns], batch.x[:, ~zero_columns])
    assert not bool((view.x[:, zero_columns] != 0).any()) and abs(float(zero_columns.float().mean()) - 0.3) < 0.08


def test_dgi_objective_is_binary_cross_entropy_of_the_bilinear_scores_by_hand():
    x, edge_index, _ = csbm(nodes=12, degree=3.0, homophily=0.5, features=5, seed=1)
    model = DGI(5, hidden=4)
    model.initialise(0)
    generator = torch.Generator().manual_seed(7)
    loss = model.loss(x, edge_index, generator)
    permutation = torch.randperm(12, generator=torch.Generator().manual_seed(7))
    from dig.tracks.ssl.node_methods import _csr

    graph = _csr(edge_index, 12)
    real, fake = model.encoder(x, graph), model.encoder(x[permutation], graph)
    summary = torch.sigmoid(real.mean(0))
    weight, bias = model.discriminator.weight[0], model.discriminator.bias[0]
    terms = []
    for h, label in [(h, 1.0) for h in real] + [(h, 0.0) for h in fake]:
        p = torch.sigmoid(h @ weight @ summary + bias)
        terms.append(-(label * torch.log(p) + (1 - label) * torch.log(1 - p)))
    assert float(loss.detach()) == pytest.approx(float(torch.stack(terms).mean().detach()), rel=1e-5)


@pytest.mark.parametrize("method", [DGI, GRACE])
def test_node_methods_lower_their_loss_and_are_reproducible(method):
    task = CSBMTask("csbm-homophilous", 0.8, 1).load()
    model = method(task.in_features, hidden=32, epochs=30)
    history = model.pretrain(task.graphs, seed=5)
    assert min(history["loss"][-5:]) < history["loss"][0]
    first = model.embed(task.graphs)
    again = method(task.in_features, hidden=32, epochs=30)
    again.pretrain(task.graphs, seed=5)
    assert first.shape == (1000, 32) and np.array_equal(first, again.embed(task.graphs))


def test_dgi_stops_early_on_the_training_loss_and_keeps_its_best_weights():
    task = KarateClubTask().load()
    model = DGI(task.in_features, hidden=16, epochs=2000, patience=5, lr=0.05)
    history = model.pretrain(task.graphs, seed=0)
    assert history["epochs"] < 2000
    best = int(np.argmin(history["loss"]))
    assert history["epochs"] == best + 1 + 5  # stopped 5 epochs after the best one


def test_node_methods_refuse_a_list_of_graphs():
    task = KarateClubTask().load()
    with pytest.raises(ValueError, match="one graph, got 2"):
        RandomNodeEncoder(34, hidden=8).pretrain(task.graphs * 2, seed=0)


def test_supervised_ceiling_trains_on_training_labels_and_picks_the_epoch_on_validation():
    task = CSBMTask("csbm-homophilous", 0.8, 1).load()
    hidden = task.labels.copy()
    hidden[task.test] = -1
    model = SupervisedNodeEncoder(task.in_features, hidden=32, epochs=40)
    history = model.pretrain(task.graphs, seed=0, supervision=Supervision(hidden, task.train, task.val))
    assert 1 <= history["best_epoch"] <= 40 and history["best_val_accuracy_frac"] > 0.8
    with pytest.raises(ValueError, match="needs the training and validation labels"):
        model.pretrain(task.graphs, seed=0)
    hidden[task.val[0]] = -1
    with pytest.raises(ValueError, match="has no label"):
        model.pretrain(task.graphs, seed=0, supervision=Supervision(hidden, task.train, task.val))


FIT_ROWS: list[set[int]] = []


def _spy_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(row_spy(FIT_ROWS), LogisticRegression())


def test_node_probe_fits_on_training_nodes_chooses_on_validation_and_never_fits_on_test():
    from dig.tracks.ssl.probe import C_GRID, probe_nodes

    rng = np.random.default_rng(0)
    labels = np.arange(90) % 2
    features = np.column_stack([np.arange(90), labels + rng.normal(scale=0.7, size=90), rng.normal(size=90)])
    train, val, test = np.arange(0, 30), np.arange(30, 60), np.arange(60, 90)
    FIT_ROWS.clear()
    score = probe_nodes(features, labels, train, val, test, estimator=_spy_pipeline)
    assert len(FIT_ROWS) == len(C_GRID) + 1 and all(rows == set(range(30)) for rows in FIT_ROWS)
    assert score.chosen[0] in C_GRID and 0.5 < score.mean <= 1.0 and 0.5 < score.validation <= 1.0
    with pytest.raises(ValueError, match="overlap"):
        probe_nodes(features, labels, train, np.arange(25, 60), test)


def test_graph_methods_are_left_out_of_node_datasets_and_named_when_asked(tmp_path):
    run = run_dig("bench", "--track", "ssl", "--budget", "smoke", "--seeds", "0", "--datasets", "karate-club",
                  "--models", "graphcl", "--out", str(tmp_path / "r"), "--quiet", cwd=tmp_path)
    assert run.returncode != 0 and "graphcl is a graph-level method and karate-club a node-level dataset" in run.stderr


def test_bench_ssl_node_level_smoke_end_to_end(tmp_path):
    out = tmp_path / "results"
    run = run_dig("bench", "--track", "ssl", "--budget", "smoke", "--seeds", "0",
                  "--datasets", "karate-club,csbm-heterophilous", "--out", str(out), "--quiet", "--workers", "1",
                  cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "ssl.csv")))
    models = {r["model"] for r in rows}
    assert models == {"random-encoder", "dgi", "grace", "mvgrl", "supervised"}, models  # graph-level ones left out
    records = [json.loads(path.read_text()) for path in (out / "ssl").glob("*.json")]
    assert len(records) == 10
    for record in records:
        splits = {m["split"] for m in record["metrics"]}
        assert splits == {"val", "test"} and len(record["extra"]["chosen_regularisation"]) == 1


def test_supervised_ceiling_never_receives_test_labels():
    from dig.registry import Entry
    from dig.tracks.ssl.track import SSLTrack

    seen = {}

    class Spy(SupervisedNodeEncoder):
        def pretrain(self, graphs, seed, on_epoch=None, supervision=None):
            seen["labels"] = supervision.labels.copy()
            return super().pretrain(graphs, seed, on_epoch, supervision)

    task = KarateClubTask()
    data = task.load()
    track = SSLTrack()
    dataset = Entry("dataset", "karate-club", "ssl", "ssl", "", task)
    model = Entry("model", "supervised", "ssl", "ssl", "", Spy, {"levels": ("node",)})
    config = {"hparams": {"hidden": 8, "epochs": 2}}
    track.run_job(None, dataset, model, 0, config)
    assert (seen["labels"][data.test] == -1).all()
    assert (seen["labels"][data.train] == data.labels[data.train]).all()


def test_ppr_diffusion_is_the_closed_form_personalised_pagerank():
    from dig.tracks.ssl.views import ppr_diffusion

    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # the path 0 - 1 - 2
    adjacency = np.eye(3) + np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    d = np.diag(adjacency.sum(1) ** -0.5)
    expected = 0.2 * np.linalg.inv(np.eye(3) - 0.8 * d @ adjacency @ d)
    assert np.allclose(ppr_diffusion(edge_index, 3, 0.2).numpy(), expected, atol=1e-6)
    # the series form: alpha * sum_k (1 - alpha)^k Â^k
    series = sum(0.2 * 0.8 ** k * np.linalg.matrix_power(d @ adjacency @ d, k) for k in range(200))
    assert np.allclose(expected, series, atol=1e-8)


def test_mvgrl_scores_each_view_against_the_other_views_summary_by_hand():
    from dig.tracks.ssl.node_methods import MVGRLNode, _csr

    x, edge_index, _ = csbm(nodes=10, degree=3.0, homophily=0.5, features=4, seed=2)
    model = MVGRLNode(4, hidden=3)
    model.initialise(0)
    loss = float(model.loss(x, edge_index, torch.Generator().manual_seed(3)).detach())
    permutation = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    graph, diffusion = _csr(edge_index, 10), model._views(x, edge_index)[1]
    with torch.no_grad():
        real_a, real_d = model._encode(x, graph, diffusion)
        fake_a, fake_d = model._encode(x[permutation], graph, diffusion)
        s_a, s_d = torch.sigmoid(real_a.mean(0)), torch.sigmoid(real_d.mean(0))
        w, b = model.discriminator.weight[0], model.discriminator.bias[0]
        terms = []
        for h, summary, label in ([(h, s_d, 1.0) for h in real_a] + [(h, s_a, 1.0) for h in real_d]
                                  + [(h, s_d, 0.0) for h in fake_a] + [(h, s_a, 0.0) for h in fake_d]):
            p = torch.sigmoid(h @ w @ summary + b)
            terms.append(-(label * torch.log(p) + (1 - label) * torch.log(1 - p)))
    assert loss == pytest.approx(float(torch.stack(terms).mean()), rel=1e-5)
    model.pretrain([(x, edge_index)], seed=0)
    assert model.embed([(x, edge_index)]).shape == (10, 3)
