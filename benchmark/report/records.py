"""Reading run records: one JSON file per (method, backbone, domain, seed), anywhere under a folder.

A record is a JSON object with at least ``method`` and ``status``; any other JSON file under the
folder (a config, a cache index) is skipped. Unreadable JSON is an error naming the file, so a
half-copied results folder never yields a silently shorter table.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from benchmark.core.errors import BenchError

RECORD_FIELDS = ("method", "status")


def is_record(data: object) -> bool:
    """True for a JSON object that carries the fields every run record has."""
    return isinstance(data, dict) and all(field in data for field in RECORD_FIELDS)


def _check(record: dict, path: Path) -> None:
    if record["status"] == "ok" and not isinstance(record.get("metrics"), dict):
        raise BenchError(f"run record {path}: status ok but 'metrics' is not an object")


def load_records(
    runs_dir: str | Path, *, backbone: str | None = None, status: str | None = "ok"
) -> list[dict]:
    """All records under ``runs_dir`` (recursive ``*.json``), sorted by path.

    ``backbone``/``status`` filter (``None`` keeps all). Each record gets ``_path`` (its file).
    Two ok records for the same (method, backbone, domain, seed) are an error naming both files:
    averaging a run twice would shrink the std.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise BenchError(f"runs folder not found: {root}")
    records: list[dict] = []
    for path in sorted(root.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BenchError(f"unreadable JSON in runs folder: {path}: {exc}") from None
        if not is_record(data):
            continue
        _check(data, path)
        if status is not None and data["status"] != status:
            continue
        if backbone is not None and data.get("backbone") != backbone:
            continue
        records.append({**data, "_path": str(path)})
    _check_duplicates(records)
    return records


def _check_duplicates(records: list[dict]) -> None:
    seen: dict[tuple, str] = {}
    for r in records:
        if r["status"] != "ok":
            continue
        key = (r["method"], r.get("backbone"), r.get("domain"), r.get("seed"))
        if key in seen:
            raise BenchError(
                f"two ok records for method={key[0]} backbone={key[1]} domain={key[2]} seed={key[3]}: "
                f"{seen[key]} and {r['_path']}"
            )
        seen[key] = r["_path"]


def select_backbone(records: list[dict], backbone: str | None) -> tuple[str | None, list[dict]]:
    """The records of one backbone: ``backbone`` if given, else the only one present.

    Several backbones and none chosen is an error listing them (with counts): mixing ViT-H and a
    tiny SAM in one mean would be meaningless, and picking one silently hides the other.
    """
    counts = Counter(r.get("backbone") for r in records)
    if backbone is not None:
        if backbone not in counts:
            present = ", ".join(sorted(str(b) for b in counts)) or "none"
            raise BenchError(f"no run records for backbone {backbone!r}; present: {present}")
        return backbone, [r for r in records if r.get("backbone") == backbone]
    if len(counts) > 1:
        listed = ", ".join(f"{b} ({n})" for b, n in sorted(counts.items(), key=lambda kv: str(kv[0])))
        raise BenchError(f"records hold several backbones: {listed}; choose one with --backbone")
    return (next(iter(counts)) if counts else None), records


def select_preset(records: list[dict], preset: str | None) -> list[dict]:
    """The records of one preset: ``preset`` if given, else all, unless they mix presets (an error
    listing them: a smoke run averaged with a paper run is meaningless)."""
    counts = Counter(r.get("preset") for r in records)
    if preset is not None:
        if preset not in counts:
            present = ", ".join(sorted(str(p) for p in counts)) or "none"
            raise BenchError(f"no run records for preset {preset!r}; present: {present}")
        return [r for r in records if r.get("preset") == preset]
    if len(counts) > 1:
        listed = ", ".join(f"{p} ({n})" for p, n in sorted(counts.items(), key=lambda kv: str(kv[0])))
        raise BenchError(f"records hold several presets: {listed}; choose one with --preset")
    return records


def load_runs(
    runs_dir: str | Path, *, backbone: str | None = None, preset: str | None = None
) -> tuple[str | None, list[dict]]:
    """Every record (any status) of one backbone and one preset under ``runs_dir``; none is an error."""
    records = load_records(runs_dir, status=None)
    if not records:
        raise BenchError(f"no run records (JSON with 'method' and 'status') under {runs_dir}")
    return select_backbone(select_preset(records, preset), backbone)


def ok_records(records: list[dict]) -> list[dict]:
    """The records that enter tables: status ``ok``."""
    return [r for r in records if r.get("status") == "ok"]
