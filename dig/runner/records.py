"""Result records: one JSON file per job, gathered into one long-format CSV per track (one row per metric).

A record that cannot be read (bad bytes, bad JSON, missing keys, a non-finite metric marked ok) is *damaged*:
it is moved aside to ``OUT/<track>/damaged/`` with the reason, and its job runs again.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dig.io import atomic_write_bytes, atomic_write_json, atomic_write_text, figure_path, stable_hash

COLUMNS = (
    "track", "dataset", "split", "model", "plugin", "seed", "budget", "metric", "value", "unit",
    "higher_is_better", "status", "reason", "epochs", "params", "train_s", "eval_s", "peak_mem_mb", "device",
    "threads", "workers", "dig_version", "torch_version", "git_sha", "config_id", "config_hash", "timestamp",
)
RECORD_SCHEMA_VERSION = 2
REQUIRED_KEYS = ("track", "dataset", "model", "seed", "budget", "config_hash", "status")
METRIC_KEYS = ("split", "name", "value", "unit", "higher_is_better")


def config_id(record: dict[str, Any]) -> str:
    """The job's configuration without its seed: the same for every seed of one (dataset, model, budget,
    settings), different as soon as any setting differs. Rows are averaged over seeds only within one id."""
    keys = ("track", "dataset", "model", "budget", "config")
    return stable_hash({key: record.get(key) for key in keys}, length=12)


def record_path(out_dir: str | Path, track: str, config_hash: str) -> Path:
    return Path(out_dir) / track / f"{config_hash}.json"


def write_record(out_dir: str | Path, record: dict[str, Any]) -> Path:
    return atomic_write_json(record_path(out_dir, record["track"], record["config_hash"]), record)


def record_problem(record: Any, path: Path | None = None) -> str | None:
    """Why ``record`` is not a usable record, or ``None`` when it is."""
    if not isinstance(record, dict):
        return f"holds a JSON {type(record).__name__}, not a record object"
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        return f"lacks the keys {missing}"
    wrong = [key for key in ("track", "dataset", "model", "budget", "config_hash", "status")
             if not isinstance(record[key], str)]
    if wrong or not isinstance(record["seed"], int):
        return f"has keys of the wrong type ({', '.join(wrong or ['seed'])})"
    if path is not None and path.stem != record["config_hash"]:
        return f"names job {record['config_hash']!r} but is stored as {path.name}"
    if record["status"] != "ok":
        return None
    metrics = record.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        return "has status ok but no metrics"
    for metric in metrics:
        if not isinstance(metric, dict) or any(key not in metric for key in METRIC_KEYS):
            return f"has a malformed metric {metric!r}"
        value = metric["value"]
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"has status ok but {metric['split']}/{metric['name']} = {value!r} is not a finite number"
    return None


def read_record(path: Path) -> tuple[dict[str, Any] | None, str]:
    """``(record, "")`` for a usable record file, ``(None, reason)`` for a damaged one."""
    try:
        text = path.read_bytes().decode("utf-8")
        record = json.loads(text, parse_constant=lambda name: math.nan)
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    except UnicodeDecodeError as exc:
        return None, f"is not UTF-8 text (byte {exc.start})"
    except json.JSONDecodeError as exc:
        return None, f"is not valid JSON ({exc.msg} at line {exc.lineno})"
    problem = record_problem(record, path)
    return (None, problem) if problem else (record, "")


@dataclass(frozen=True)
class DamagedRecord:
    path: Path
    reason: str
    moved_to: Path | None = None

    def message(self) -> str:
        where = f"; moved to {self.moved_to}" if self.moved_to else ""
        return f"damaged record {self.path} {self.reason}{where}; its job will run again"


def set_aside(path: Path, reason: str) -> DamagedRecord:
    """Move a damaged record to ``damaged/`` beside it (with the reason), so it blocks nothing and is kept."""
    folder = path.parent / "damaged"
    try:
        folder.mkdir(exist_ok=True)
        target = folder / path.name
        os.replace(path, target)
        atomic_write_text(folder / f"{path.name}.reason.txt", reason + "\n")
    except OSError:
        return DamagedRecord(path, reason)
    return DamagedRecord(path, reason, target)


def scan_records(out_dir: str | Path, track: str) -> tuple[dict[str, dict[str, Any]], list[DamagedRecord]]:
    """Every usable record of ``track`` under ``out_dir`` by job hash; damaged ones are set aside."""
    folder = Path(out_dir) / track
    records: dict[str, dict[str, Any]] = {}
    damaged: list[DamagedRecord] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record, reason = read_record(path)
        if record is None:
            damaged.append(set_aside(path, reason))
        else:
            records[record["config_hash"]] = record
    return records, damaged


def load_records(out_dir: str | Path, track: str) -> list[dict[str, Any]]:
    records, _ = scan_records(out_dir, track)
    return sorted(records.values(), key=lambda r: (r["dataset"], r["model"], r["seed"], r["budget"]))


def record_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The CSV rows of one record: one per metric, or one row with an empty metric for a failed job."""
    base = {key: record.get(key, "") for key in COLUMNS}
    base["config_id"] = config_id(record)
    base["reason"] = " ".join(str(record.get("reason", "")).split())
    metrics = record.get("metrics") or []
    if record.get("status") != "ok" or not metrics:
        return [{**base, "split": "", "metric": "", "value": "", "unit": "", "higher_is_better": ""}]
    return [
        {**base, "split": m["split"], "metric": m["name"], "value": repr(float(m["value"])), "unit": m["unit"],
         "higher_is_better": str(bool(m["higher_is_better"])).lower()}
        for m in metrics
    ]


def rows_to_csv(rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def gather_csv(out_dir: str | Path, track: str) -> tuple[Path, list[DamagedRecord]]:
    """Write ``out_dir/<track>.csv`` from every usable record of the track under ``out_dir``."""
    records, damaged = scan_records(out_dir, track)
    ordered = sorted(records.values(), key=lambda r: (r["dataset"], r["model"], r["seed"], r["budget"]))
    rows = [row for record in ordered for row in record_rows(record)]
    write_figures(out_dir, track, ordered)
    return atomic_write_text(Path(out_dir) / f"{track}.csv", rows_to_csv(rows)), damaged


def write_figures(out_dir: str | Path, track: str, records: Iterable[dict[str, Any]]) -> list[Path]:
    """The PNG a job left in its record's ``extra.figure_png`` (base64), of the lowest seed of each
    (dataset, model, budget), written atomically; a record without one is skipped."""
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        extra = record.get("extra") or {}
        if record.get("status") != "ok" or not isinstance(extra, dict) or not isinstance(extra.get("figure_png"), str):
            continue
        key = (record["dataset"], record["model"])
        if key not in chosen or record["seed"] < chosen[key]["seed"]:
            chosen[key] = record
    written = []
    for (dataset, model), record in sorted(chosen.items()):
        try:
            data = base64.b64decode(record["extra"]["figure_png"], validate=True)
        except (binascii.Error, ValueError):
            continue  # a damaged picture costs the picture, never the table
        written.append(atomic_write_bytes(figure_path(out_dir, track, dataset, model), data))
    return written
