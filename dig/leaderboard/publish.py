"""Publish committed leaderboards: ``leaderboards/<track>.csv`` -> ``leaderboards/README.md`` (tables) and
``leaderboards/index.html`` (the same tables and one bar chart per metric, inline SVG, no dependencies)."""

from __future__ import annotations

import html
import math
import re
from collections import defaultdict
from pathlib import Path

from dig.errors import UnknownNameError
from dig.io import atomic_write_text, figure_path
from dig.leaderboard.table import Aggregate, aggregate, audit, failed_jobs, metric_order, read_rows
from dig.registry import Registry

Notes = dict[tuple[str, str, str], str]  # (track, dataset, budget) -> what the table's training protocol is


def _groups(aggregates: list[Aggregate]) -> dict[tuple[str, str, str], list[Aggregate]]:
    groups: dict[tuple[str, str, str], list[Aggregate]] = defaultdict(list)
    for agg in aggregates:
        groups[(agg.track, agg.dataset, agg.budget)].append(agg)
    return dict(sorted(groups.items()))


def _cell(agg: Aggregate | None) -> str:
    if agg is None:
        return "—"
    return f"{agg.mean:.4g}" if agg.n == 0 else f"{agg.formatted()} (n={agg.n})"


def read_references(path: Path) -> list[Aggregate]:
    """Published numbers (``references/<track>.csv``: track, dataset, model, metric, value, unit,
    higher_is_better, budget, source). They are shown beside ours, marked as not produced here (n = 0)."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Aggregate(track=r["track"], dataset=r["dataset"], model=r["model"], plugin="published", budget=r["budget"],
                  metric=r["metric"], unit=r["unit"], higher_is_better=r["higher_is_better"] == "true",
                  mean=float(r["value"]), std=math.nan, n=0, seeds=())
        for r in rows
    ]


def md_text(text: str) -> str:
    """``text`` safe inside a Markdown table cell: no HTML, no cell breaks, no emphasis or links."""
    escaped = html.escape(" ".join(str(text).split()), quote=False)
    for char in "\\|*`[]":
        escaped = escaped.replace(char, "\\" + char)
    return escaped


def _direction(aggs: list[Aggregate], metric: str) -> str:
    hib = next(a.higher_is_better for a in aggs if a.metric == metric)
    return "↑" if hib else "↓"


BUDGET_CAPTIONS = {
    "smoke": "smoke budget: tiny subsets and two epochs, a check that everything runs; the numbers mean nothing",
    "default": "default budget: settings sized for a 2-core CPU (the table note and the README say what each track "
               "reduces), so read the ranking under this budget, never against published numbers",
    "paper": "paper budget: the published protocols",
}


def epochs_by_model(rows: list[dict[str, str]]) -> dict[tuple[str, str, str], str]:
    """(dataset, model, budget) -> the epochs its finished jobs trained ("5", "0.65", or "3-5" when seeds differ)."""
    seen: dict[tuple[str, str, str], set[float]] = defaultdict(set)
    for row in rows:
        try:
            epochs = float(row["epochs"])
        except ValueError:
            continue
        if row["status"] == "ok" and math.isfinite(epochs):
            seen[(row["dataset"], row["model"], row["budget"])].add(epochs)
    return {key: f"{min(v):.3g}" if len(v) == 1 else f"{min(v):.3g}-{max(v):.3g}" for key, v in seen.items()}


def caption(dataset: str, budget: str, models: list[str], epochs: dict[tuple[str, str, str], str],
            note: str = "") -> str:
    trained = [f"{model} {epochs[(dataset, model, budget)]}" for model in models if (dataset, model, budget) in epochs]
    parts = [BUDGET_CAPTIONS.get(budget, f"budget {budget}"), *([note] if note else [])]
    if trained:
        parts.append("epochs: " + ", ".join(trained))
    return "; ".join(parts) + "."


# (track, dataset) -> [(model, path relative to the page, what the picture's panels show)]
Figures = dict[tuple[str, str], list[tuple[str, str, str]]]


def find_figures(folder: Path, aggregates: list[Aggregate], registry: Registry | None = None) -> Figures:
    """The pictures ``figures/<track>/<dataset>/<model>.png`` under ``folder`` of the models in the tables, each
    with its track's ``figure_panels`` (what the panels show, left to right)."""
    found: Figures = {}
    for track, dataset, model in sorted({(a.track, a.dataset, a.model) for a in aggregates}):
        path = figure_path(folder, track, dataset, model)
        if path.is_file():
            found.setdefault((track, dataset), []).append((model, path.relative_to(folder).as_posix(),
                                                           figure_panels(track, registry)))
    return found


def figure_panels(track: str, registry: Registry | None) -> str:
    try:
        track_obj = registry.get("track", track).obj if registry else None
    except UnknownNameError:  # a track of a plugin not installed here
        track_obj = None
    return getattr(track_obj, "figure_panels", "picture")


def markdown_tables(aggregates: list[Aggregate], heading: str = "",
                    epochs: dict[tuple[str, str, str], str] | None = None, notes: Notes | None = None,
                    figures: Figures | None = None) -> str:
    parts = []
    for (track, dataset, budget), aggs in _groups(aggregates).items():
        metrics = metric_order(aggs)
        models = sorted({(a.label, a.plugin) for a in aggs})
        by_key = {(a.label, a.metric): a for a in aggs}
        parts.append(f"### {heading}{md_text(track)} · {md_text(dataset)} · budget {md_text(budget)}\n")
        if epochs is not None:
            note = (notes or {}).get((track, dataset, budget), "")
            parts.append(md_text(caption(dataset, budget, sorted({a.model for a in aggs}), epochs, note)) + "\n")
        parts.append("| model | plugin | " + " | ".join(f"{md_text(m)} {_direction(aggs, m)}" for m in metrics) + " |")
        parts.append("|---|---|" + "---|" * len(metrics))
        for model, plugin in models:
            cells = [_cell(by_key.get((model, m))) for m in metrics]
            parts.append(f"| {md_text(model)} | {md_text(plugin)} | " + " | ".join(cells) + " |")
        parts.append("")
        for model, path, panels in (figures or {}).get((track, dataset), []):
            parts.append(f"{md_text(model)} ({md_text(panels)}, lowest seed):\n\n![{md_text(model)}]({path})\n")
    return "\n".join(parts)


def _bar_fractions(values: list[float]) -> tuple[list[float], bool]:
    """Bar lengths in (0, 1]; a log scale when positive values span more than two decades."""
    positive = [v for v in values if v > 0]
    if len(positive) == len(values) and max(values) / min(values) > 100:
        low, high = math.log10(min(values) / 10), math.log10(max(values))
        return [(math.log10(v) - low) / (high - low) for v in values], True
    top = max(abs(v) for v in values) or 1.0
    return [abs(v) / top for v in values], False


def _svg_bars(aggs: list[Aggregate], metric: str) -> str:
    rows = sorted((a for a in aggs if a.metric == metric), key=lambda a: a.mean, reverse=aggs[0].higher_is_better)
    fractions, log = _bar_fractions([a.mean for a in rows])
    width, bar_h, left = 560, 22, 140
    out = [f'<svg width="{width}" height="{bar_h * len(rows) + 24}" font-size="12">']
    for i, (agg, fraction) in enumerate(zip(rows, fractions, strict=True)):
        y = 4 + i * bar_h
        length = max(1.0, fraction * (width - left - 110))
        out.append(f'<text x="0" y="{y + 14}">{html.escape(agg.label)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar_h - 6}" fill="#4a78b5"/>')
        out.append(f'<text x="{left + length + 4:.1f}" y="{y + 14}">{html.escape(agg.formatted(3))}</text>')
    note = "log scale" if log else "linear scale"
    out.append(f'<text x="{left}" y="{bar_h * len(rows) + 20}" fill="#666">{html.escape(metric)} ({note}; mean ± std over seeds)</text>')
    out.append("</svg>")
    return "\n".join(out)


CURVE_METRIC = re.compile(r"^(?P<family>.+)_s(?P<x>\d+)_(?P<unit>[^_]+)$")  # fidelity_plus_s70_prob: x = 70


def curve_families(metrics: list[str]) -> dict[str, list[tuple[int, str]]]:
    """Metrics measured along a sweep (``<family>_s<x>_<unit>``, e.g. fidelity at sparsity 50..90 %) grouped per
    family, with their x values ascending; families with fewer than two points are left out."""
    families: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for metric in metrics:
        if match := CURVE_METRIC.match(metric):
            families[f"{match['family']}_{match['unit']}"].append((int(match["x"]), metric))
    return {name: sorted(points) for name, points in families.items() if len(points) >= 2}


CURVE_COLOURS = ("#4a78b5", "#d1603d", "#3a9a5b", "#8e5bb5", "#c9a227", "#5bb5b0", "#b55b8e", "#7a7a7a", "#2f2f8f", "#8f2f2f")


def _svg_curves(aggs: list[Aggregate], family: str, points: list[tuple[int, str]]) -> str:
    """One line per model: the family's mean over seeds against x (sparsity in %)."""
    by_key = {(a.label, a.metric): a.mean for a in aggs}
    labels = sorted({a.label for a in aggs if any(a.metric == m for _, m in points)})
    values = [v for label in labels for _, m in points if (v := by_key.get((label, m))) is not None]
    low, high = min(values + [0.0]), max(values + [1e-12])
    width, height, left, bottom, legend = 560, 220, 40, 30, 150
    xs = [x for x, _ in points]

    def px(x: float) -> float:
        return left + (x - xs[0]) / max(xs[-1] - xs[0], 1) * (width - left - legend - 10)

    def py(v: float) -> float:
        return 10 + (high - v) / max(high - low, 1e-12) * (height - bottom - 10)

    out = [f'<svg width="{width}" height="{height}" font-size="11">',
           f'<line x1="{left}" y1="{py(low):.1f}" x2="{px(xs[-1]):.1f}" y2="{py(low):.1f}" stroke="#999"/>',
           f'<line x1="{left}" y1="10" x2="{left}" y2="{py(low):.1f}" stroke="#999"/>',
           f'<text x="2" y="14">{high:.3g}</text><text x="2" y="{py(low):.1f}">{low:.3g}</text>']
    out += [f'<text x="{px(x) - 8:.1f}" y="{height - 12}">{x}%</text>' for x in xs]
    for k, label in enumerate(labels):
        colour = CURVE_COLOURS[k % len(CURVE_COLOURS)]
        line = [(px(x), py(by_key[(label, m)])) for x, m in points if (label, m) in by_key]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in line)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{width - legend + 4}" y="{16 + 14 * k}" fill="{colour}">{html.escape(label)}</text>')
    out.append(f'<text x="{left}" y="{height - 1}" fill="#666">{html.escape(family)} against sparsity (mean over seeds)</text>')
    out.append("</svg>")
    return "\n".join(out)


def html_page(aggregates: list[Aggregate], title: str, references: list[Aggregate] | None = None,
              epochs: dict[tuple[str, str, str], str] | None = None, notes: Notes | None = None,
              model_info: list[tuple[str, str, str, tuple[str, ...]]] | None = None, figures: Figures | None = None) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for (track, dataset, budget), aggs in _groups(aggregates).items():
        body.append(f"<h2>{html.escape(f'{track} · {dataset} · budget {budget}')}</h2>")
        if epochs is not None:
            note = (notes or {}).get((track, dataset, budget), "")
            body.append(f"<p>{html.escape(caption(dataset, budget, sorted({a.model for a in aggs}), epochs, note))}</p>")
        metrics = metric_order(aggs)
        by_key = {(a.label, a.metric): a for a in aggs}
        models = sorted({(a.label, a.plugin) for a in aggs})
        head = "".join(f"<th>{html.escape(m)} {_direction(aggs, m)}</th>" for m in metrics)
        body.append(f"<table><tr><th>model</th><th>plugin</th>{head}</tr>")
        for model, plugin in models:
            cells = "".join(f"<td>{html.escape(_cell(by_key.get((model, m))))}</td>" for m in metrics)
            body.append(f"<tr><td>{html.escape(model)}</td><td>{html.escape(plugin)}</td>{cells}</tr>")
        body.append("</table>")
        for model, path, panels in (figures or {}).get((track, dataset), []):
            body.append(f"<figure><img src='{html.escape(path)}' alt='{html.escape(model)}'><figcaption>"
                        f"{html.escape(model)}: {html.escape(panels)}, lowest seed</figcaption></figure>")
        families = curve_families(metrics)
        on_curves = {m for points in families.values() for _, m in points}
        for family, points in families.items():
            body.append(f"<h3>{html.escape(family)}</h3>{_svg_curves(aggs, family, points)}")
        for metric in metrics:
            if metric not in on_curves:
                body.append(f"<h3>{html.escape(metric)}</h3>{_svg_bars(aggs, metric)}")
    if model_info:
        body.append("<h2>Models and their departures from the published code</h2><ul>")
        for name, plugin, summary, departures in model_info:
            items = "".join(f"<li>{html.escape(d)}</li>" for d in departures)
            body.append(f"<li><b>{html.escape(name)}</b> ({html.escape(plugin)}): {html.escape(summary)}"
                        f"{f'<ul>{items}</ul>' if items else ''}</li>")
        body.append("</ul>")
    for (track, dataset, budget), aggs in _groups(references or []).items():
        body.append(f"<h2>{html.escape(f'Published references, not produced here: {track} · {dataset} · {budget} protocol')}</h2>")
        metrics = metric_order(aggs)
        by_key = {(a.model, a.metric): a for a in aggs}
        head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
        body.append(f"<table><tr><th>model</th>{head}</tr>")
        for model in sorted({a.model for a in aggs}):
            cells = "".join(f"<td>{html.escape(_cell(by_key.get((model, m))))}</td>" for m in metrics)
            body.append(f"<tr><td>{html.escape(model)}</td>{cells}</tr>")
        body.append("</table>")
    style = "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"


def model_notes(aggregates: list[Aggregate], registry: Registry | None) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(name, plugin, summary, departures) of every model in the tables that ``registry`` knows."""
    if registry is None:
        return []
    out = []
    for track, name in sorted({(a.track, a.model) for a in aggregates}):
        try:
            kind = getattr(registry.get("track", track).obj, "method_kind", "model")
            entry = registry.get(kind, name, track=track)
        except UnknownNameError:  # a model of a plugin not installed here: its rows stay, its notes cannot be shown
            continue
        out.append((name, entry.plugin, entry.summary, tuple(entry.meta.get("departures", ()))))
    return out


def table_notes(aggregates: list[Aggregate], registry: Registry | None) -> Notes:
    """The tracks' ``table_note(dataset, budget)`` for every table (e.g. targets trained jointly)."""
    notes: Notes = {}
    for track, dataset, budget in {(a.track, a.dataset, a.budget) for a in aggregates} if registry else ():
        try:
            track_obj = registry.get("track", track).obj
            dataset_entry = registry.get("dataset", dataset, track=track)
        except UnknownNameError:  # a track or dataset of a plugin not installed here
            continue
        note = getattr(track_obj, "table_note", None)
        if note is not None and (text := note(dataset_entry, budget)):
            notes[(track, dataset, budget)] = text
    return notes


def publish(folder: str | Path = "leaderboards", registry: Registry | None = None) -> list[Path]:
    """Regenerate README.md and index.html in ``folder`` from every ``<track>.csv`` in it; with ``registry``,
    the captions say how each table's targets were trained and a section lists each model's departures from
    the published code."""
    folder = Path(folder)
    csvs = sorted(folder.glob("*.csv"))
    aggregates: list[Aggregate] = []
    epochs: dict[tuple[str, str, str], str] = {}
    notes = []
    for path in csvs:
        rows = read_rows(path)
        aggregates.extend(aggregate(rows))
        epochs.update(epochs_by_model(rows))
        failed = failed_jobs(rows)
        if failed:
            notes.append(f"- {md_text(path.name)}: {len(failed)} failed job(s) are not in the tables:")
            notes.extend(f"  - {md_text(r['dataset'])}/{md_text(r['model'])} seed {md_text(r['seed'])}: "
                         f"{md_text(r['reason'] or 'no reason recorded')}" for r in failed)
        notes.extend(f"- {md_text(path.name)}: {md_text(note)}" for note in audit(rows))
    intro = [
        "# Leaderboards",
        "",
        "Generated by `dig leaderboard publish` from the CSVs in this folder, which `dig bench` produced. "
        "Cells are mean ± unbiased std over seeds on the test split (n = number of seeds); ↓ lower is better, "
        "↑ higher is better. Do not edit by hand.",
        "",
        *notes,
        "",
    ]
    references = [agg for path in sorted((folder / "references").glob("*.csv")) for agg in read_references(path)]
    notes, models = table_notes(aggregates, registry), model_notes(aggregates, registry)
    figures = find_figures(folder, aggregates, registry)
    md = "\n".join(intro) + markdown_tables(aggregates, epochs=epochs, notes=notes, figures=figures)
    if models:
        md += "\n## Models and their departures from the published code\n\n"
        for name, plugin, summary, departures in models:
            md += f"- **{md_text(name)}** ({md_text(plugin)}): {md_text(summary)}\n"
            md += "".join(f"  - {md_text(d)}\n" for d in departures)
    if references:
        md += (
            "\n## Published references — not produced here\n\nNumbers reported by the papers under their own "
            "protocol (`paper` budget: full training sets, GPU-scale training), from "
            "`references/*.csv`, for comparison only.\n\n" + markdown_tables(references, heading="published: ")
        )
    return [
        atomic_write_text(folder / "README.md", md),
        atomic_write_text(folder / "index.html", html_page(aggregates, "dig leaderboards", references, epochs, notes, models,
                                                                figures)),
    ]
