"""The 3D track's budgets: equal CPU time per model (relative cost, fractional epochs, floor), longest-first ordering, and the
messages for a bad cost or a target the dataset lacks."""

import pytest

from dig.errors import DigError, UnknownNameError
from dig.plugins import load_plugins
from dig.runner.spec import BenchSpec, expand_jobs
from dig.tracks.threed.qm9 import QM9


@pytest.fixture(scope="module")
def registry():
    registry = load_plugins().registry
    with registry.registering_for("test"):
        registry.add_dataset("qm9-md-like", QM9(), track="3d", evaluator="mae", summary="QM9 with MD epochs",
                             train={"default": {"epochs": 20, "min_epochs": 5}})
        registry.add_model("cheap", registry.get("model", "schnet").obj, track="3d", summary="cost 0.5",
                           relative_cost=0.5)
        registry.add_model("free", registry.get("model", "schnet").obj, track="3d", summary="bad", relative_cost=0)
        registry.add_model("typo", registry.get("model", "schnet").obj, track="3d", summary="bad",
                           relative_cost={"energi": 2.0, "xtb-ethanol": 3.0})
    return registry


def _epochs(registry, dataset, model):
    track = registry.get("track", "3d").obj
    config = track.job_config(registry.get("dataset", dataset), registry.get("model", model), "default", {})
    return config["train"]["epochs"]


def test_default_budget_gives_every_model_the_same_cpu_time(registry):
    """A model of cost c trains epochs / c of the dataset's SchNet-equivalent epochs, a fraction included, so
    epochs x cost is the same for every model; a dataset's own cost wins over its kind's; warm-up shrinks with
    the run; a dataset's floor (min_epochs) raises it."""
    track = registry.get("track", "3d").obj
    assert _epochs(registry, "qm9", "schnet") == 4
    assert _epochs(registry, "qm9", "cheap") == 8
    for dataset, epochs in (("qm9", 4), ("xtb-aspirin", 10), ("xtb-ethanol", 10)):
        for model in ("comenet", "dimenet++", "spherenet"):
            entry = registry.get("model", model)
            cost = entry.meta["relative_cost"].get(dataset, entry.meta["relative_cost"]["energy" if dataset == "qm9" else "forces"])
            assert _epochs(registry, dataset, model) == pytest.approx(epochs / cost, abs=1e-4)
    assert _epochs(registry, "xtb-ethanol", "dimenet++") > 1.4 * _epochs(registry, "xtb-aspirin", "dimenet++")
    assert _epochs(registry, "qm9", "dimenet++") < 1  # part of one epoch
    config = track.job_config(registry.get("dataset", "qm9"), registry.get("model", "dimenet++"), "default", {})
    assert config["train"]["warmup_epochs"] == pytest.approx(0.4 * config["train"]["epochs"] / 4, abs=1e-4)
    assert _epochs(registry, "qm9-md-like", "schnet") == 20
    assert _epochs(registry, "qm9-md-like", "spherenet") == 5  # 20 / 10.7 = 1.9, raised to the floor


def test_jobs_are_ordered_costliest_first(registry):
    track = registry.get("track", "3d").obj
    jobs = expand_jobs(registry, BenchSpec(track="3d", datasets=["qm9", "qm9-md-like"], models=["schnet", "spherenet"],
                                           seeds=[0]))
    costs = {(job.dataset, job.model): track.job_cost(registry, job) for job in jobs}
    # equal training time; evaluation (a forward pass per validation and test molecule) costs a triplet model more
    assert costs[("qm9", "schnet")] < costs[("qm9", "spherenet")] < 1.5 * costs[("qm9", "schnet")]
    assert costs[("qm9-md-like", "spherenet")] > 2 * costs[("qm9", "spherenet")]  # 5 epochs (floor) against 0.47


def test_bad_cost_and_missing_target_name_the_thing_and_the_fix(registry):
    track = registry.get("track", "3d").obj
    with pytest.raises(DigError, match=r"'free' \(plugin 'test'\) declares relative_cost=0"):
        track.job_config(registry.get("dataset", "qm9"), registry.get("model", "free"), "default", {})
    with pytest.raises(DigError, match=r"'typo' \(plugin 'test'\) declares relative_cost for \['energi'\], neither a "
                                       r"dataset kind \(energy, forces\) nor a registered 3D dataset"):
        track.job_config(registry.get("dataset", "qm9"), registry.get("model", "typo"), "default", {})
    with pytest.raises(UnknownNameError, match=r"dataset 'qm9'.*'U1'.*--datasets"):
        track.job_config(registry.get("dataset", "qm9"), registry.get("model", "schnet"), "default", {"targets": ["U1"]})


def test_paper_budget_trains_one_model_per_target_as_the_papers_do(registry):
    """At ``paper`` every target gets its own model (joint elsewhere); each equals training that target alone."""
    track = registry.get("track", "3d").obj
    qm9, schnet = registry.get("dataset", "qm9"), registry.get("model", "schnet")
    paper = track.job_config(qm9, schnet, "paper", {"targets": ["U0", "homo"]})
    assert paper["target_training"] == "per-target"
    assert "target_training" not in track.job_config(qm9, schnet, "default", {"targets": ["U0", "homo"]})
    smoke = track.job_config(qm9, schnet, "smoke", {"targets": ["U0", "homo"]})
    smoke["train"]["epochs"] = 1
    per_target = track.run_job(registry, qm9, schnet, 0, {**smoke, "target_training": "per-target"})
    alone = track.run_job(registry, qm9, schnet, 0, {**smoke, "targets": ["homo"]})
    test = lambda outcome: {m.name: m.value for m in outcome.metrics if m.split == "test"}  # noqa: E731
    assert test(per_target)["homo_mae_meV"] == pytest.approx(test(alone)["homo_mae_meV"], rel=1e-6)
    assert set(per_target.extra["per_target"]) == {"U0", "homo"}
    assert "std_mae_2targets_pct" in test(per_target) and "std_mae_1target_pct" in test(alone)
    assert track.table_note(qm9, "paper").startswith("one model per target")
    note = track.table_note(qm9, "default")
    assert note.startswith("reduced training sets") and "undertrained; joint, 4 targets" in note
