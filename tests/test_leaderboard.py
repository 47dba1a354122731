"""Aggregation, regression checks (direction-aware, missing and failed rows) and publishing."""

import csv

import pytest
from conftest import run_dig

from dig.leaderboard import aggregate, compare, parse_tolerances, publish, read_rows
from dig.leaderboard.table import audit
from dig.runner.records import COLUMNS, rows_to_csv


def _row(model, seed, metric, value, hib=False, status="ok", split="test"):
    row = dict.fromkeys(COLUMNS, "")
    row.update(track="3d", dataset="qm9", split=split, model=model, plugin="p", seed=str(seed), budget="default",
               metric=metric, value=str(value), unit=metric.rsplit("_", 1)[-1], higher_is_better=str(hib).lower(),
               status=status)
    return row


def _write(path, rows):
    path.write_text(rows_to_csv(rows))
    return path


REFERENCE = [_row("schnet", s, "U0_mae_meV", v) for s, v in enumerate([10.0, 12.0, 14.0])] + [
    _row("schnet", s, "auc_pct", v, hib=True) for s, v in enumerate([90.0, 91.0, 92.0])
] + [_row("schnet", 0, "U0_mae_meV", 999.0, split="valid")]


def test_aggregate_mean_and_unbiased_std():
    agg = {a.metric: a for a in aggregate(REFERENCE)}
    assert agg["U0_mae_meV"].mean == pytest.approx(12.0)
    assert agg["U0_mae_meV"].std == pytest.approx(2.0)  # n - 1 in the denominator
    assert agg["U0_mae_meV"].n == 3


def test_compare_is_direction_aware():
    worse_mae = [_row("schnet", s, "U0_mae_meV", 15.0) for s in range(3)] + REFERENCE[3:6]
    worse_auc = REFERENCE[:3] + [_row("schnet", s, "auc_pct", 70.0, hib=True) for s in range(3)]
    better = [_row("schnet", s, "U0_mae_meV", 5.0) for s in range(3)] + [
        _row("schnet", s, "auc_pct", 99.0, hib=True) for s in range(3)]
    assert [c.metric for c in (x.reference for x in compare(REFERENCE, worse_mae) if x.regressed)] == ["U0_mae_meV"]
    assert [x.reference.metric for x in compare(REFERENCE, worse_auc) if x.regressed] == ["auc_pct"]
    assert not any(x.regressed for x in compare(REFERENCE, better))
    assert not any(x.regressed for x in compare(REFERENCE, worse_mae, parse_tolerances(["*_meV=0.5"])))


def test_tolerance_syntax_errors_are_explained():
    with pytest.raises(Exception, match="METRIC=RELATIVE"):
        parse_tolerances(["U0_mae_meV"])


def test_check_cli_exit_codes(tmp_path):
    reference = _write(tmp_path / "ref.csv", REFERENCE)
    equal = _write(tmp_path / "equal.csv", REFERENCE)
    worse = _write(tmp_path / "worse.csv", [_row("schnet", s, "U0_mae_meV", 30.0) for s in range(3)] + REFERENCE[3:6])
    missing = _write(tmp_path / "missing.csv", REFERENCE[3:6])
    failed = _write(tmp_path / "failed.csv", REFERENCE[3:6] + [_row("schnet", 0, "", "", status="failed")])
    assert run_dig("check", str(equal), "--against", str(reference)).returncode == 0
    out = run_dig("check", str(worse), "--against", str(reference))
    assert out.returncode == 1 and "REGRESSED" in out.stdout and "U0_mae_meV" in out.stdout
    for path in (missing, failed):
        out = run_dig("check", str(path), "--against", str(reference))
        assert out.returncode == 1 and "MISSING" in out.stdout
    assert run_dig("check", str(worse), "--against", str(reference), "--tolerance", "U0_mae_meV=2").returncode == 0


def test_malformed_csv_is_named(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    out = run_dig("check", str(bad), "--against", str(bad))
    assert out.returncode == 2 and "not a dig result CSV" in out.stderr
    with pytest.raises(Exception, match="not a dig result CSV"):
        read_rows(bad)


def test_publish_writes_markdown_and_html(tmp_path):
    _write(tmp_path / "3d.csv", REFERENCE + [_row("mean", s, "U0_mae_meV", 800000.0) for s in range(3)])
    written = publish(tmp_path)
    markdown = (tmp_path / "README.md").read_text()
    assert "| schnet | p | 12 ± 2 (n=3)" in markdown and "U0_mae_meV ↓" in markdown
    page = (tmp_path / "index.html").read_text()
    assert page.count("<svg") == 2 and "log scale" in page
    assert {p.name for p in written} == {"README.md", "index.html"}
    with open(tmp_path / "3d.csv") as handle:
        assert next(csv.reader(handle)) == list(COLUMNS)


def test_publish_shows_published_references_apart(tmp_path):
    _write(tmp_path / "3d.csv", REFERENCE)
    (tmp_path / "references").mkdir()
    (tmp_path / "references" / "3d.csv").write_text(
        "track,dataset,model,metric,value,unit,higher_is_better,budget,source\n"
        "3d,qm9,spherenet,U0_mae_meV,6.26,meV,false,paper,Liu et al. 2022\n"
    )
    publish(tmp_path)
    markdown = (tmp_path / "README.md").read_text()
    ours, _, published = markdown.partition("not produced here")
    assert "spherenet" not in ours and "| spherenet | published | 6.26 |" in published
    assert "Published references, not produced here" in (tmp_path / "index.html").read_text()


def test_publish_says_how_targets_were_trained_and_lists_departures(tmp_path):
    """The page names joint training and every model's departures from the published code (issue 15)."""
    from dig.plugins import load_plugins

    rows = [{**r, "model": m} for m in ("comenet", "comenet-smooth", "schnet") for r in REFERENCE]
    _write(tmp_path / "3d.csv", rows)
    publish(tmp_path, load_plugins().registry)
    markdown = (tmp_path / "README.md").read_text()
    assert "joint, 4 targets: one model per seed predicts U0, homo, lumo, gap together" in markdown
    departures = markdown.split("## Models and their departures")[1]
    smooth = departures.split("**comenet-smooth**")[1].split("- **")[0]
    assert "smooth frame switching" in smooth and "8 radial functions" in smooth
    assert "smooth frame switching" not in departures.split("**comenet**")[1].split("- **")[0]
    page = (tmp_path / "index.html").read_text()
    assert "joint, 4 targets" in page and "Glorot-orthogonal" in page


# Issue 16, faults 3, 4, 8, 9 and 11: non-finite values, duplicated and mixed rows, unreadable files, escaping.


def test_a_non_finite_value_marked_ok_is_refused_by_show_check_and_publish(tmp_path):
    nan = _write(tmp_path / "3d.csv", REFERENCE + [_row("egnn", s, "U0_mae_meV", "nan") for s in range(2)])
    for args in (("leaderboard", "show", "--track", "3d", "--file", str(nan)),
                 ("check", str(nan), "--against", str(_write(tmp_path / "ref.csv", REFERENCE))),
                 ("leaderboard", "publish", "--dir", str(tmp_path))):
        out = run_dig(*args)
        assert out.returncode == 2, args
        assert "3d.csv:9: egnn/U0_mae_meV is nan in a row with status ok" in " ".join(out.stderr.split())
        assert "Traceback" not in out.stderr


def test_check_never_passes_against_a_non_finite_reference(tmp_path):
    reference = _write(tmp_path / "ref.csv", [_row("schnet", s, "U0_mae_meV", "inf") for s in range(3)])
    new = _write(tmp_path / "new.csv", [_row("schnet", s, "U0_mae_meV", 1000.0) for s in range(3)])
    out = run_dig("check", str(new), "--against", str(reference))
    assert out.returncode == 2 and "is inf in a row with status ok" in " ".join(out.stderr.split())


def test_duplicate_rows_count_once_and_conflicting_ones_are_an_error():
    doubled = REFERENCE + REFERENCE[:2]
    agg = {a.metric: a for a in aggregate(doubled)}
    assert agg["U0_mae_meV"].n == 3 and agg["U0_mae_meV"].mean == pytest.approx(12.0)
    assert any("counted once" in note for note in audit(doubled))
    with pytest.raises(Exception, match="two values of U0_mae_meV"):
        aggregate(REFERENCE + [_row("schnet", 0, "U0_mae_meV", 99.0)])


def _config(rows, config_id):
    return [{**r, "config_id": config_id} for r in rows]


def test_mixed_configurations_are_never_averaged_and_check_refuses_them(tmp_path):
    old = _config(REFERENCE[:3], "aaaa")
    new = _config([_row("schnet", s, "U0_mae_meV", 50.0) for s in range(3)], "bbbb")
    aggs = aggregate(old + new)
    assert sorted((a.label, a.n, a.mean) for a in aggs) == [
        ("schnet [config aaaa]", 3, 12.0), ("schnet [config bbbb]", 3, 50.0)]
    assert any("2 configurations" in note for note in audit(old + new))
    mixed = _write(tmp_path / "mixed.csv", old + new)
    out = run_dig("check", str(mixed), "--against", str(_write(tmp_path / "ref.csv", old)))
    assert out.returncode == 2 and "several configurations" in out.stderr
    shown = run_dig("leaderboard", "show", "--track", "3d", "--file", str(mixed))
    assert shown.returncode == 0 and "schnet [config aaaa]" in shown.stdout and "2 configurations" in shown.stderr
    other = _write(tmp_path / "other.csv", _config(REFERENCE[:3], "cccc"))
    out = run_dig("check", str(other), "--against", str(_write(tmp_path / "ref.csv", old)))
    assert out.returncode == 0 and "another configuration" in out.stderr and "ok (other config)" in run_dig(
        "check", str(other), "--against", str(tmp_path / "ref.csv"), "-v").stdout


def test_check_says_when_the_budgets_differ(tmp_path):
    reference = _write(tmp_path / "ref.csv", REFERENCE)
    smoke = _write(tmp_path / "smoke.csv", [{**r, "budget": "smoke"} for r in REFERENCE])
    out = run_dig("check", str(smoke), "--against", str(reference))
    assert out.returncode == 2
    assert "budget (smoke) differs from the reference's (default)" in " ".join(out.stderr.split())


def test_unreadable_csvs_are_named(tmp_path):
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    for path, message in ((binary, "is not a text CSV"), (folder, "is a folder")):
        out = run_dig("leaderboard", "show", "--track", "3d", "--file", str(path))
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_show_lists_failed_jobs_with_their_reason(tmp_path):
    failed = {**_row("egnn", 0, "", "", status="failed"), "reason": "TrainingError: loss became nan"}
    path = _write(tmp_path / "3d.csv", REFERENCE + [failed])
    out = run_dig("leaderboard", "show", "--track", "3d", "--file", str(path))
    assert out.returncode == 0 and "1 failed job(s)" in out.stdout and "loss became nan" in out.stdout
    publish(tmp_path)
    assert "egnn/" in (tmp_path / "README.md").read_text() or "egnn" in (tmp_path / "README.md").read_text()


def test_publish_escapes_names_in_markdown(tmp_path):
    hostile = [{**r, "model": "<script>alert(1)</script>", "plugin": "a|b"} for r in REFERENCE[:3]]
    _write(tmp_path / "3d.csv", REFERENCE + hostile)
    publish(tmp_path)
    markdown = (tmp_path / "README.md").read_text()
    assert "<script>" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    row = next(line for line in markdown.splitlines() if "alert" in line)
    assert "a\\|b" in row and row.replace("\\|", "").count("|") == markdown.splitlines()[
        markdown.splitlines().index(row) - 1].replace("\\|", "").count("|")
    assert "<script>" not in (tmp_path / "index.html").read_text()


def test_published_tables_say_what_they_are(tmp_path):
    rows = [{**r, "epochs": "5"} for r in REFERENCE] + [{**_row("mean", s, "U0_mae_meV", 900.0), "epochs": "0"}
                                                        for s in range(3)]
    _write(tmp_path / "3d.csv", rows)
    publish(tmp_path)
    caption = "(the table note and the README say what each track reduces), so read the ranking under this budget, never against published numbers; epochs: mean 0, schnet 5."
    assert caption in (tmp_path / "README.md").read_text()
    assert caption in (tmp_path / "index.html").read_text()


def test_publish_draws_metrics_measured_along_a_sweep_as_curves(tmp_path):
    """fidelity_plus_s50_prob .. s90 (one metric per sparsity) become one line chart with a line per explainer;
    a metric at a single sparsity stays a bar chart."""
    rows = [_row(model, seed, f"fidelity_plus_s{x}_prob", value + x / 100, hib=True)
            for model, value in (("saliency", 0.1), ("random", 0.0)) for seed in range(2) for x in (50, 70, 90)]
    rows += [_row("saliency", seed, "characterization_s70_score", 0.5, hib=True) for seed in range(2)]
    _write(tmp_path / "xgraph.csv", rows)
    publish(tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert page.count("<svg") == 2 and page.count("<polyline") == 2
    assert "fidelity_plus_prob against sparsity" in page and "90%" in page
    from dig.leaderboard.publish import curve_families

    assert curve_families(["fidelity_plus_s50_prob", "fidelity_plus_s90_prob", "characterization_s70_score",
                           "gt_edge_auc_pct"]) == {"fidelity_plus_prob": [(50, "fidelity_plus_s50_prob"),
                                                                          (90, "fidelity_plus_s90_prob")]}


def test_committed_published_references_are_well_formed():
    """Every ``leaderboards/references/<track>.csv`` reads, belongs to its track, names its unit as the metric's last
    word (as our metrics do), gives a source and a finite value, and names each (dataset, model, metric) once."""
    import math
    from pathlib import Path

    from dig.leaderboard.publish import read_references

    folder = Path(__file__).resolve().parents[1] / "leaderboards" / "references"
    files = sorted(folder.glob("*.csv"))
    assert {path.stem for path in files} >= {"3d", "generation", "segmentation", "ssl", "xgraph"}
    for path in files:
        rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
        assert rows and all(r["source"].strip() for r in rows), path.name
        assert {r["track"] for r in rows} == {path.stem}, path.name
        for r in rows:
            assert r["metric"].rsplit("_", 1)[-1] == r["unit"], (path.name, r["metric"], r["unit"])
            assert r["higher_is_better"] in ("true", "false"), (path.name, r["metric"])
        keys = [(r["dataset"], r["model"], r["metric"], r["budget"]) for r in rows]
        assert len(keys) == len(set(keys)), f"{path.name} names a value twice"
        assert all(math.isfinite(agg.mean) and agg.n == 0 for agg in read_references(path))
