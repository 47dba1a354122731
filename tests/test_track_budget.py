"""The 3D track's budgets: equal CPU time per model (relative cost, floor), longest-first ordering, and the
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
    return registry


def _epochs(registry, dataset, model):
    track = registry.get("track", "3d").obj
    config = track.job_config(registry.get("dataset", dataset), registry.get("model", model), "default", {})
    return config["train"]["epochs"]


def test_default_budget_gives_every_model_the_same_cpu_time(registry):
    assert _epochs(registry, "qm9", "schnet") == 1
    assert _epochs(registry, "qm9", "comenet") == 0.4  # 1 / 2.5: a fraction of an epoch
    assert _epochs(registry, "qm9", "dimenet++") == round(1 / 7.7, 4)  # its energy cost
    assert _epochs(registry, "qm9", "cheap") == 2
    assert _epochs(registry, "qm9-md-like", "schnet") == 20
    assert _epochs(registry, "qm9-md-like", "spherenet") == 5  # 20 / 14 = 1.43, raised to the dataset's floor


def test_a_fraction_of_an_epoch_takes_that_many_steps_and_validates_once():
    """epochs = 0.3 of 10 steps: 3 optimizer steps, one (partial) epoch, one validation, the cosine schedule
    over those 3 steps."""
    from dig.tracks.threed.train import TrainConfig, _lr_factor, total_steps

    config = TrainConfig(epochs=0.3, warmup_fraction=0.5)
    assert total_steps(config, 10) == 3
    assert total_steps(TrainConfig(epochs=0.01), 10) == 1  # never zero steps
    assert total_steps(TrainConfig(epochs=2.5), 10) == 25
    assert _lr_factor(config, 0, 10) == pytest.approx(1 / 1.5)  # warm-up over half of the 3 steps
    assert _lr_factor(config, 3, 10) == pytest.approx(config.min_lr_ratio)  # the schedule ends with the steps


def test_partial_epoch_fit_on_real_molecules(registry):
    track = registry.get("track", "3d").obj
    qm9, schnet = registry.get("dataset", "qm9"), registry.get("model", "schnet")
    smoke = track.job_config(qm9, schnet, "smoke", {"targets": ["U0"]})
    smoke["train"]["epochs"] = 0.5  # 256 molecules, batch 32: 4 of 8 steps
    outcome = track.run_job(registry, qm9, schnet, 0, smoke)
    assert outcome.extra["train_steps"] == 4 and outcome.epochs == 1 and len(outcome.extra["history"]) == 1


def test_jobs_are_ordered_costliest_first(registry):
    track = registry.get("track", "3d").obj
    # equal time makes most default jobs equally costly; on qm9-md-like SphereNet's floor of 5 epochs costs more
    jobs = expand_jobs(registry, BenchSpec(track="3d", datasets=["qm9-md-like"], models=["schnet", "spherenet"],
                                           seeds=[0]))
    costs = {job.model: track.job_cost(registry, job) for job in jobs}
    assert costs["spherenet"] > costs["schnet"]


def test_bad_cost_and_missing_target_name_the_thing_and_the_fix(registry):
    track = registry.get("track", "3d").obj
    with pytest.raises(DigError, match=r"'free' \(plugin 'test'\) declares relative_cost=0"):
        track.job_config(registry.get("dataset", "qm9"), registry.get("model", "free"), "default", {})
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
