"""Aggregation, regression checks (direction-aware, missing and failed rows) and publishing."""

import csv

import pytest
from conftest import run_dig

from dig.leaderboard import aggregate, compare, parse_tolerances, publish, read_rows
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
