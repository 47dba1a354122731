"""Result records: one JSON file per job, gathered into one long-format CSV per track (one row per metric)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dig.io import atomic_write_json, atomic_write_text

COLUMNS = (
    "track", "dataset", "split", "model", "plugin", "seed", "budget", "metric", "value", "unit",
    "higher_is_better", "status", "epochs", "params", "train_s", "eval_s", "peak_mem_mb", "device",
    "dig_version", "torch_version", "git_sha", "config_hash", "timestamp",
)
RECORD_SCHEMA_VERSION = 1


def record_path(out_dir: str | Path, track: str, config_hash: str) -> Path:
    return Path(out_dir) / track / f"{config_hash}.json"


def write_record(out_dir: str | Path, record: dict[str, Any]) -> Path:
    return atomic_write_json(record_path(out_dir, record["track"], record["config_hash"]), record)


def read_record(path: Path) -> dict[str, Any] | None:
    """A record, or ``None`` for a file that is not a readable record (reported by the caller, never fatal)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and "config_hash" in record else None


def finished_record(out_dir: str | Path, track: str, config_hash: str) -> dict[str, Any] | None:
    path = record_path(out_dir, track, config_hash)
    record = read_record(path) if path.exists() else None
    return record if record is not None and record.get("status") == "ok" else None


def load_records(out_dir: str | Path, track: str) -> list[dict[str, Any]]:
    folder = Path(out_dir) / track
    records = [read_record(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted((r for r in records if r is not None), key=lambda r: (r["dataset"], r["model"], r["seed"], r["budget"]))


def record_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The CSV rows of one record: one per metric, or one row with an empty metric for a failed job."""
    base = {key: record.get(key, "") for key in COLUMNS}
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


def gather_csv(out_dir: str | Path, track: str) -> Path:
    """Write ``out_dir/<track>.csv`` from every record of the track under ``out_dir``."""
    rows = [row for record in load_records(out_dir, track) for row in record_rows(record)]
    return atomic_write_text(Path(out_dir) / f"{track}.csv", rows_to_csv(rows))
