"""A run's `eval/` folder: one `<task>_metrics.json` per competition (or technique task),
the files the seed's summary lists (`summary["files"]`, under `summary["eval_dir"]`).

They are derived from the attempt rows, so they can always be rewritten: the run's
driver writes them when the run ends, and the service rewrites them whenever a
summary is asked for and the rows changed since (a run started by `harness run`
gets them on its first summary).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from harness.store import RunStore, atomic_write_text

EVAL_DIR = "eval"
METRICS_SUFFIX = "_metrics.json"
_STAMP = ".stamp"  # what the folder was derived from: rows seen and the run's status


def eval_stamp(rs: RunStore, status: str) -> str:
    """A cheap fingerprint of the rows behind `eval/`: per-attempt files, the compacted table, the status."""
    parts = [status]
    if rs.attempts_dir.is_dir():
        parts.append(str(sum(1 for n in os.listdir(rs.attempts_dir) if n.endswith(".parquet") and not n.startswith("."))))
    compacted = rs.dir / "attempts.parquet"
    if compacted.is_file():
        st = compacted.stat()
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def eval_files(rs: RunStore) -> list[str]:
    """Names of the metrics files in the run's eval/ folder, sorted."""
    folder = rs.dir / EVAL_DIR
    if not folder.is_dir():
        return []
    return sorted(n for n in os.listdir(folder) if n.endswith(METRICS_SUFFIX) and (folder / n).is_file()
                  and not (folder / n).is_symlink())


def ensure_eval_dir(rs: RunStore, status: str) -> list[str]:
    """Rewrite `eval/` unless it was derived from the same rows and status; returns its file names."""
    stamp = eval_stamp(rs, status)
    folder = rs.dir / EVAL_DIR
    try:
        current = (folder / _STAMP).read_text()
    except OSError:
        current = None
    if current != stamp:
        write_eval_dir(rs, stamp)
    return eval_files(rs)


def write_eval_dir(rs: RunStore, stamp: Optional[str] = None) -> list[str]:
    """One `<task>_metrics.json` per task of the run from its attempt rows (atomic writes); returns the names."""
    df = rs.attempts()
    folder = rs.dir / EVAL_DIR
    if folder.is_symlink():
        raise OSError(f"{folder} is a symlink; refusing to write through it")
    folder.mkdir(exist_ok=True)
    names = []
    if len(df):
        keys = df["technique"].where(df["technique"].notna() & (df["technique"] != ""), df["competition_id"])
        for key, group in df.groupby(keys, sort=True):
            name = f"{_safe(str(key))}{METRICS_SUFFIX}"
            atomic_write_text(folder / name, json.dumps(task_metrics(str(key), group), indent=2, default=str) + "\n")
            names.append(name)
    for old in set(eval_files(rs)) - set(names):  # a task that has no rows any more
        (folder / old).unlink(missing_ok=True)
    atomic_write_text(folder / _STAMP, stamp if stamp is not None else eval_stamp(rs, rs.read_state().status))
    return sorted(names)


def task_metrics(task: str, rows: pd.DataFrame) -> dict[str, Any]:
    """The metrics of one task's attempts: counts, score mean ± SEM, medal rates, thresholds, one entry per attempt."""
    n = len(rows)
    scores = [float(s) for s in rows["score"] if _num(s) is not None]
    mean = sum(scores) / len(scores) if scores else None
    sem = None
    if len(scores) > 1 and mean is not None:
        var = sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)
        sem = math.sqrt(var / len(scores))
    first = rows.iloc[0]

    def rate(col: str) -> Optional[float]:
        vals = rows[col].dropna()
        return float(vals.astype(bool).mean()) if len(vals) else None

    return {
        "task": task,
        "task_kind": first["task_kind"],
        "competition_id": first["competition_id"],
        "technique": first["technique"] if isinstance(first["technique"], str) and first["technique"] else None,
        "run_id": first["run_id"],
        "agent_id": first["agent_id"],
        "attempts": n,
        "succeeded": int((rows["status"] == "succeeded").sum()),
        "statuses": {str(k): int(v) for k, v in rows["status"].value_counts().sort_index().items()},
        "valid_submission_rate": rate("valid_submission"),
        "score_mean": mean,
        "score_sem": sem,
        "is_lower_better": _bool(first["is_lower_better"]),
        "thresholds": {k: _num(first[f"{k}_threshold"]) for k in ("gold", "silver", "bronze", "median")},
        "any_medal_rate": rate("any_medal"),
        "gold_medals": int(rows["gold_medal"].fillna(False).astype(bool).sum()),
        "silver_medals": int(rows["silver_medal"].fillna(False).astype(bool).sum()),
        "bronze_medals": int(rows["bronze_medal"].fillna(False).astype(bool).sum()),
        "above_median_rate": rate("above_median"),
        "per_attempt": [
            {"attempt_id": r["attempt_id"], "seed": int(r["seed"]), "status": r["status"], "score": _num(r["score"]),
             "valid_submission": _bool(r["valid_submission"]), "invalid_reason": r["invalid_reason"] or None,
             "any_medal": _bool(r["any_medal"]), "agent_seconds": _num(r["agent_seconds"]),
             "artifacts_dir": r["artifacts_dir"], "error": r["error"] or None}
            for _, r in rows.sort_values(["seed", "attempt_id"]).iterrows()
        ],
    }


def _num(v: Any) -> Optional[float]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _bool(v: Any) -> Optional[bool]:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return bool(v)


def _safe(key: str) -> str:
    """Task ids are registry ids already; keep the file name plain whatever they hold."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in key).lstrip(".") or "task"


def eval_dir_path(rs: RunStore) -> Path:
    return rs.dir / EVAL_DIR
