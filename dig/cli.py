"""The ``dig`` command line: parses, calls the runner / leaderboard / registry, prints with rich."""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from dig.errors import DigError
from dig.leaderboard import aggregate, compare, parse_tolerances, publish, read_rows
from dig.leaderboard.compare import DEFAULT_TOLERANCE
from dig.leaderboard.table import audit, failed_jobs, metric_order
from dig.plugins import LoadedPlugins, PluginLoadWarning, PluginSettings, load_plugins
from dig.registry import KINDS
from dig.runner import BenchSpec, Job, Terminated, run_bench
from dig.runner import Progress as RunnerProgress

# Wide tables when the output is a file or pipe (rich would otherwise squeeze them into 80 columns).
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def _csv_list(text: str | None) -> list[str] | None:
    """``None`` when the option was not given; a list (maybe empty, which callers reject) when it was."""
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--workers takes a positive integer or 'auto', got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"--workers takes a positive integer or 'auto', got {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in _csv_list(text) or []]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {text!r}") from exc


def _plugin_settings(args: argparse.Namespace) -> PluginSettings:
    return PluginSettings.resolve(
        strict=True if args.strict else None,
        disabled=_csv_list(args.disable_plugins),
        autoload=False if args.no_plugin_autoload else None,
    )


def _load(args: argparse.Namespace) -> LoadedPlugins:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        loaded = load_plugins(_plugin_settings(args))
    for failure in loaded.failures:
        errors.print(f"[yellow]warning:[/yellow] {escape(failure.message())}", highlight=False)
    return loaded


def cmd_list(args: argparse.Namespace) -> int:
    registry = _load(args).registry
    kinds = [args.kind] if args.kind else list(KINDS)
    for kind in kinds:
        entries = registry.entries(kind, args.track)
        table = Table(title=f"{kind}s", title_justify="left", show_lines=False)
        for column in ("name", "track", "plugin", "summary"):
            table.add_column(column, overflow="fold")
        for entry in entries:
            table.add_row(*map(escape, (entry.name, entry.track, entry.plugin, entry.summary)))
        console.print(table)
    return 0


class RichProgress(RunnerProgress):
    """A bar for the jobs and one per running job (several at once with worker processes)."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
            TimeRemainingColumn(), console=errors, transient=False,
        )
        self.jobs_task = None
        self.running: dict[str, Any] = {}

    def start(self, total: int, skipped: int, weights: dict[str, float] | None = None) -> None:
        """The jobs bar advances by each job's relative cost, so its time remaining weighs long jobs right."""
        self.bar.start()
        self.weights = weights or {}
        self.total, self.done = total, skipped
        self.jobs_task = self.bar.add_task("jobs", total=sum(self.weights.values()) or None, info=self._count())

    def _count(self) -> str:
        return f"{self.done}/{self.total} jobs"

    def job_started(self, job: Job):
        task = self.bar.add_task(f"  {job.label}", total=None, info="starting")
        self.running[job.config_hash] = task

        def on_epoch(epoch: int, total: int, info: dict[str, Any]) -> None:
            text = "  ".join(f"{k}={v:.4g}" for k, v in info.items() if k != "epoch")
            self.bar.update(task, total=total, completed=epoch, info=text)

        return on_epoch

    def job_finished(self, job: Job, record: dict[str, Any]) -> None:
        task = self.running.pop(job.config_hash, None)
        if task is not None:
            self.bar.remove_task(task)
        self.done += 1
        self.bar.update(self.jobs_task, advance=self.weights.get(job.config_hash, 0.0), info=self._count())
        if record.get("status") != "ok":
            self.bar.console.print(f"[red]failed[/red] {job.label}: {escape(str(record.get('reason')))}", highlight=False)

    def stop(self) -> None:
        self.bar.stop()


def _print_aggregates(rows: list[dict[str, str]], title: str, split: str = "test") -> None:
    for note in audit(rows, split=split):
        errors.print(f"[yellow]warning:[/yellow] {escape(note)}", highlight=False)
    aggs = aggregate(rows, split=split)
    groups: dict[tuple[str, str, str], list] = defaultdict(list)
    for agg in aggs:
        groups[(agg.track, agg.dataset, agg.budget)].append(agg)
    if not groups:
        console.print(f"{title}: no finished results")
    for (track, dataset, budget), members in sorted(groups.items()):
        metrics = metric_order(members)
        table = Table(title=f"{title}: {track} · {dataset} · {budget} ({split}, mean ± std over seeds)", title_justify="left")
        table.add_column("model")
        table.add_column("plugin")
        higher = {a.metric: a.higher_is_better for a in members}
        for metric in metrics:
            table.add_column(f"{metric} {'↑' if higher[metric] else '↓'}", justify="right")
        table.add_column("n", justify="right")
        by_key = {(a.label, a.metric): a for a in members}
        for model, plugin in sorted({(a.label, a.plugin) for a in members}):
            cells = [by_key[(model, m)].formatted() if (model, m) in by_key else "—" for m in metrics]
            n = max(by_key[(model, m)].n for m in metrics if (model, m) in by_key)
            table.add_row(escape(model), escape(plugin), *cells, str(n))
        console.print(table)


def cmd_bench(args: argparse.Namespace) -> int:
    loaded = _load(args)
    options: dict[str, Any] = {}
    if args.targets:
        options["targets"] = _csv_list(args.targets)
    spec = BenchSpec(
        track=args.track, datasets=_csv_list(args.datasets), models=_csv_list(args.models), seeds=args.seeds,
        budget=args.budget, out=args.out, executor=args.executor, workers=args.workers, threads=args.threads,
        options=options, plugins=_plugin_settings(args), submitit_cluster=args.submitit_cluster,
    )
    result = run_bench(spec, loaded.registry, RichProgress() if not args.quiet else None)
    for note in result.notes:
        errors.print(f"[yellow]warning:[/yellow] {escape(note)}", highlight=False)
    for damaged in result.damaged:
        errors.print(f"[yellow]warning:[/yellow] {escape(damaged.message())}", highlight=False)
    for job, owner in result.busy:
        errors.print(f"[yellow]skipped[/yellow] {job.label}: another dig bench ({owner}) is running it; its record "
                     f"appears in {args.out} when it finishes (run this command again to gather it)", highlight=False)
    rows = read_rows(result.csv_path)
    ran = {job.config_hash for job in result.jobs}
    _print_aggregates([r for r in rows if r["config_hash"] in ran], "results")
    console.print(f"{len(result.jobs)} jobs ({len(result.skipped)} already finished); records in "
                  f"{Path(args.out) / args.track}/, table in {result.csv_path}", highlight=False)
    failed = result.failed
    for record in failed:
        errors.print(f"[red]failed:[/red] {record['dataset']}/{record['model']}/seed{record['seed']}: "
                     f"{escape(str(record.get('reason')))}", highlight=False)
    return 1 if failed else 0


def cmd_leaderboard_show(args: argparse.Namespace) -> int:
    path = Path(args.file or Path(args.dir) / f"{args.track}.csv")
    rows = [r for r in read_rows(path) if r["track"] == args.track]
    _print_aggregates(rows, str(path), split=args.split)
    failed = failed_jobs(rows)
    if failed:
        table = Table(title=f"{len(failed)} failed job(s), not in the tables above", title_justify="left")
        for column in ("dataset", "model", "seed", "budget", "reason"):
            table.add_column(column, overflow="fold")
        for row in failed:
            table.add_row(*map(escape, (row["dataset"], row["model"], row["seed"], row["budget"],
                                        row["reason"] or "(not recorded)")))
        console.print(table)
    return 0


def cmd_leaderboard_publish(args: argparse.Namespace) -> int:
    for path in publish(args.dir, _load(args).registry):
        console.print(f"wrote {path}", highlight=False)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    tolerances = parse_tolerances(args.tolerance or [])
    results = compare(read_rows(args.against), read_rows(args.new), tolerances, args.default_tolerance)
    if not results:
        errors.print(f"{args.against} holds no finished test metrics to check against")
        return 1
    bad = [c for c in results if c.regressed]
    table = Table(title=f"{args.new} vs {args.against}", title_justify="left")
    for column in ("dataset", "model", "metric", "reference", "new", "change", "tolerance", "status"):
        table.add_column(column)
    for c in results if args.verbose else bad:
        new = c.new.formatted() if c.new else "missing"
        change = "—" if c.new is None else f"{c.change:+.1%} worse" if c.change > 0 else f"{-c.change:.1%} better"
        style = "red" if c.regressed else "green"
        table.add_row(escape(c.reference.dataset), escape(c.reference.label), escape(c.reference.metric), c.reference.formatted(), new,
                      change, f"{c.tolerance:.0%}", f"[{style}]{c.status}[/{style}]")
    if bad or args.verbose:
        console.print(table)
    other = sorted({f"{c.reference.dataset}/{c.reference.model}" for c in results if c.config_differs})
    if other:
        errors.print(f"note: {', '.join(other)} ran in another configuration than the reference (other settings, "
                     "code version or plugin); their numbers are compared all the same", highlight=False)
    console.print(f"{len(bad)} regression(s) in {len(results)} metric(s)" if bad else f"no regression in {len(results)} metric(s)")
    return 1 if bad else 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    registry = _load(args).registry
    entry = registry.get("dataset", args.dataset, track=args.track)
    prepare = getattr(entry.obj, "prepare", None)
    if prepare is None:
        raise DigError(f"dataset {entry.name!r} has nothing to prepare: it is built on first use")
    manifest = prepare(args.source)
    console.print(f"prepared {entry.name}: {manifest}", highlight=False)
    return 0


def cmd_data_validate(args: argparse.Namespace) -> int:
    registry = _load(args).registry
    entry = registry.get("dataset", args.dataset, track=args.track)
    validate = getattr(registry.get("track", entry.track).obj, "validate", None)
    if validate is None:
        console.print(f"track {entry.track!r} has no dataset checks; {entry.name} was not validated")
        return 0
    problems = validate(entry, args.budget)
    for problem in problems:
        errors.print(f"[red]problem:[/red] {escape(problem)}", highlight=False)
    if not problems:
        console.print(f"{entry.name} ({entry.plugin}): ok for the {args.budget} budget", highlight=False)
    return 1 if problems else 0


def cmd_measure_cost(args: argparse.Namespace) -> int:
    registry = _load(args).registry
    track = registry.get("track", args.track).obj
    measure = getattr(track, "measure_cost", None)
    if measure is None:
        raise DigError(f"track {args.track!r} does not use relative costs")
    datasets = _csv_list(args.dataset) or list(track.default_datasets)
    table = Table(title=f"relative_cost of {args.model} (CPU time per training molecule / dig's SchNet's, default "
                        "sizes, 1 thread, same process)", title_justify="left")
    for column in ("dataset", "kind", "relative_cost", "per round", "ms/molecule", "schnet ms/molecule"):
        table.add_column(column)
    costs: dict[str, list[float]] = defaultdict(list)
    for dataset in datasets:
        m = measure(registry, args.model, dataset)
        costs[m.kind].append(m.relative_cost)
        table.add_row(dataset, m.kind, f"{m.relative_cost:.2f}", " ".join(f"{r:.2f}" for r in m.ratios),
                      f"{1000 * m.seconds_per_molecule:.2f}", f"{1000 * m.reference_seconds_per_molecule:.2f}")
    console.print(table)
    declared = {kind: round(statistics.median(values), 2) for kind, values in sorted(costs.items())}
    console.print(f"declare it at registration: relative_cost={declared}", highlight=False)
    return 0


def cmd_plugin_new(args: argparse.Namespace) -> int:
    from dig.scaffold import scaffold_plugin

    files = scaffold_plugin(args.name, args.dir)
    root = files[0].parent
    for path in files:
        console.print(f"wrote {path}", highlight=False)
    console.print(f"next: pip install -e {root} && dig bench --track 3d --models {args.name} --budget smoke",
                  highlight=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dig", description="Benchmarks for graph and biomedical-image deep learning.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('dig').__version__}")
    parser.add_argument("--strict", action="store_true", help="a plugin that fails to load is an error (DIG_STRICT_PLUGINS=1)")
    parser.add_argument("--disable-plugins", metavar="A,B", help="skip these plugins (DIG_DISABLE_PLUGINS)")
    parser.add_argument("--no-plugin-autoload", action="store_true",
                        help="load only dig's built-in plugins (DIG_DISABLE_PLUGIN_AUTOLOAD=1)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="tracks, datasets, models, evaluators and explainers with their plugin")
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--track")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("bench", help="train and evaluate (track x dataset x model x seed) jobs")
    p.add_argument("--track", required=True)
    p.add_argument("--datasets", metavar="A,B", help="default: the track's default datasets")
    p.add_argument("--models", metavar="X,Y", help="default: every registered model of the track")
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2], metavar="0,1,2")
    p.add_argument("--budget", choices=("smoke", "default", "paper"), default="default")
    p.add_argument("--targets", metavar="U0,homo", help="targets to train on (track option)")
    p.add_argument("--out", default="results", help="records go to OUT/<track>/, the table to OUT/<track>.csv")
    p.add_argument("--executor", choices=("local", "submitit"), default="local")
    p.add_argument("--workers", type=_workers, default="auto",
                   help="parallel jobs, each in its own process: 'auto' (default) = usable cores // --threads, "
                        "capped at the number of jobs; 1 runs the jobs in this process")
    p.add_argument("--threads", type=_positive, default=1,
                   help="torch threads per job (default 1); results depend on it, never on --workers")
    p.add_argument("--submitit-cluster", default=None, help="submitit cluster: slurm, local or debug (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_bench)

    lb = sub.add_parser("leaderboard", help="show or publish leaderboards").add_subparsers(dest="action", required=True)
    p = lb.add_parser("show", help="mean ± std over seeds, in the terminal")
    p.add_argument("--track", required=True)
    p.add_argument("--dir", default="leaderboards")
    p.add_argument("--file", help="a result CSV instead of DIR/<track>.csv")
    p.add_argument("--split", default="test")
    p.set_defaults(func=cmd_leaderboard_show)
    p = lb.add_parser("publish", help="DIR/*.csv -> DIR/README.md and DIR/index.html")
    p.add_argument("--dir", default="leaderboards")
    p.set_defaults(func=cmd_leaderboard_publish)

    p = sub.add_parser("check", help="exit 1 if NEW regresses against a committed leaderboard")
    p.add_argument("new", help="result CSV of the new run")
    p.add_argument("--against", required=True, help="reference CSV, e.g. leaderboards/3d.csv")
    p.add_argument("--tolerance", action="append", metavar="METRIC=REL",
                   help="relative tolerance per metric (glob patterns allowed), repeatable")
    p.add_argument("--default-tolerance", type=float, default=DEFAULT_TOLERANCE)
    p.add_argument("-v", "--verbose", action="store_true", help="show every metric, not only regressions")
    p.set_defaults(func=cmd_check)

    data = sub.add_parser("data", help="dataset caches").add_subparsers(dest="action", required=True)
    p = data.add_parser("prepare", aliases=["build"],
                        help="build a dataset's cache (simulated ones, e.g. xtb-aspirin) or read its canonical file")
    p.add_argument("dataset")
    p.add_argument("--track", default=None)
    p.add_argument("--from", dest="source", default=None, help="canonical file (e.g. DimeNet's qm9_eV.npz)")
    p.set_defaults(func=cmd_data_prepare)
    p = data.add_parser("validate", help="check a dataset as a bench would, before any job trains (exit 1 on a problem)")
    p.add_argument("dataset")
    p.add_argument("--track", default=None)
    p.add_argument("--budget", choices=("smoke", "default", "paper"), default="default")
    p.set_defaults(func=cmd_data_validate)

    p = sub.add_parser("measure-cost", help="measure a model's relative_cost against dig's SchNet (same run)")
    p.add_argument("model")
    p.add_argument("--dataset", metavar="A,B", help="datasets to measure on (default: the track's default datasets)")
    p.add_argument("--track", default="3d")
    p.set_defaults(func=cmd_measure_cost)

    plugin = sub.add_parser("plugin", help="plugin authoring").add_subparsers(dest="action", required=True)
    p = plugin.add_parser("new", help="write a working plugin package that registers a 3D model NAME")
    p.add_argument("name")
    p.add_argument("--dir", default=None, help="where to write it (default: ./dig-NAME)")
    p.set_defaults(func=cmd_plugin_new)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DigError as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return 2
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        errors.print(f"{what}: finished jobs are kept and the CSV holds them; run the same command again to resume")
        return 143 if isinstance(exc, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
