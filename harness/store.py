"""The run store: one directory per run, Parquet tables, atomic writes.

    <store>/<run_id>/
      run.json                  RunState (spec, owner, status, counts, times)
      attempts/<attempt_id>.parquet   one row, written the moment the attempt finished
      attempts.parquet          the compacted table (readers accept both)
      technique_grades.parquet  one row per check of a technique/engineering task
      score_details.parquet     one row per attempt and sub-score group (competitions with `grade_details`)
      grading_report.json       mlebench-compatible aggregate report
      summary.json              RunSummary
      artifacts/<attempt_id>/   submission/ code/ logs/

Every file is written to a temporary name and renamed into place, so a crash
never leaves a torn file and a finished attempt's row is never lost.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.spec import AttemptResult, CheckResult, RunState, RunSummary, utcnow

TS = pa.timestamp("us", tz="UTC")
ATTEMPTS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("attempt_id", pa.string()), ("task_kind", pa.string()),
    ("competition_id", pa.string()), ("technique", pa.string()), ("agent_id", pa.string()),
    ("seed", pa.int32()), ("sandbox", pa.string()), ("isolation", pa.string()), ("status", pa.string()),
    ("exit_code", pa.int32()), ("tries", pa.int32()), ("started_at", TS), ("ended_at", TS),
    ("agent_seconds", pa.float64()), ("grade_seconds", pa.float64()), ("peak_memory_mb", pa.float64()),
    ("node", pa.string()), ("score", pa.float64()), ("submission_exists", pa.bool_()),
    ("valid_submission", pa.bool_()), ("invalid_reason", pa.string()),
    ("gold_threshold", pa.float64()), ("silver_threshold", pa.float64()), ("bronze_threshold", pa.float64()),
    ("median_threshold", pa.float64()), ("any_medal", pa.bool_()), ("gold_medal", pa.bool_()),
    ("silver_medal", pa.bool_()), ("bronze_medal", pa.bool_()), ("above_median", pa.bool_()),
    ("is_lower_better", pa.bool_()), ("error", pa.string()), ("artifacts_dir", pa.string()),
])
TECHNIQUE_GRADES_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("attempt_id", pa.string()), ("technique", pa.string()), ("check", pa.string()),
    ("points", pa.float64()), ("max_points", pa.float64()), ("passed", pa.bool_()), ("detail", pa.string()),
])
SCORE_DETAILS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("attempt_id", pa.string()), ("competition_id", pa.string()), ("seed", pa.int32()),
    ("group", pa.string()), ("score", pa.float64()),
])
assert set(ATTEMPTS_SCHEMA.names) == set(AttemptResult.model_fields), "schema and AttemptResult disagree"


class RunNotFound(KeyError):
    def __str__(self) -> str:
        return f"no run {self.args[0]!r} in the store; `harness runs` lists the runs there"


def default_store() -> Path:
    return Path(os.environ.get("HARNESS_RUNS_DIR", "runs"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _write_table(path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


class RunStore:
    """One run's directory."""

    def __init__(self, root: Path | str, run_id: str) -> None:
        self.root = Path(root)
        self.run_id = run_id
        self.dir = self.root / run_id

    # -- run.json
    @property
    def state_path(self) -> Path:
        return self.dir / "run.json"

    def exists(self) -> bool:
        return self.state_path.is_file()

    def read_state(self) -> RunState:
        if not self.exists():
            raise RunNotFound(self.run_id)
        return RunState.model_validate_json(self.state_path.read_text())

    def write_state(self, state: RunState) -> None:
        state.updated_at = utcnow()
        atomic_write_text(self.state_path, state.model_dump_json(indent=1))

    # -- attempts
    @property
    def attempts_dir(self) -> Path:
        return self.dir / "attempts"

    def artifacts_dir(self, attempt_id: str) -> Path:
        return self.dir / "artifacts" / attempt_id

    def write_attempt(self, row: AttemptResult, checks: Iterable[CheckResult] = ()) -> None:
        """Durably record one finished attempt (replacing an earlier row of the same attempt)."""
        checks = list(checks)
        if checks:
            rows = [dict(run_id=row.run_id, attempt_id=row.attempt_id, technique=row.technique, **c.model_dump()) for c in checks]
            _write_table(self.dir / "technique_grades" / f"{row.attempt_id}.parquet",
                         pa.Table.from_pylist(rows, schema=TECHNIQUE_GRADES_SCHEMA))
        _write_table(self.attempts_dir / f"{row.attempt_id}.parquet",
                     pa.Table.from_pylist([row.model_dump()], schema=ATTEMPTS_SCHEMA))

    def write_score_details(self, row: AttemptResult, details: dict[str, float]) -> None:
        """Record an attempt's sub-scores (group -> score) next to its row; nothing when there are none."""
        if details:
            rows = [dict(run_id=row.run_id, attempt_id=row.attempt_id, competition_id=row.competition_id,
                         seed=row.seed, group=g, score=float(v)) for g, v in details.items()]
            _write_table(self.dir / "score_details" / f"{row.attempt_id}.parquet",
                         pa.Table.from_pylist(rows, schema=SCORE_DETAILS_SCHEMA))

    def score_details(self) -> pd.DataFrame:
        """Every recorded sub-score of this run: one row per attempt and group."""
        df = _read_rows(self.dir / "score_details", self.dir / "score_details.parquet", SCORE_DETAILS_SCHEMA, None,
                        ["attempt_id", "group"])
        return df

    def compact_score_details(self) -> None:
        """Rewrite score_details.parquet from the per-attempt files (when there are any)."""
        df = self.score_details()
        if len(df):
            _write_table(self.dir / "score_details.parquet",
                         pa.Table.from_pandas(df, schema=SCORE_DETAILS_SCHEMA, preserve_index=False))

    def attempts(self) -> pd.DataFrame:
        """Every recorded attempt of this run, one row each."""
        return _read_rows(self.attempts_dir, self.dir / "attempts.parquet", ATTEMPTS_SCHEMA, "attempt_id")

    def technique_grades(self) -> pd.DataFrame:
        return _read_rows(self.dir / "technique_grades", self.dir / "technique_grades.parquet",
                          TECHNIQUE_GRADES_SCHEMA, None)

    def compact(self) -> None:
        """Rewrite attempts.parquet (and technique_grades.parquet) from the per-attempt files."""
        df = self.attempts()
        _write_table(self.dir / "attempts.parquet", pa.Table.from_pandas(df, schema=ATTEMPTS_SCHEMA, preserve_index=False))
        tg = self.technique_grades()
        if len(tg):
            _write_table(self.dir / "technique_grades.parquet",
                         pa.Table.from_pandas(tg, schema=TECHNIQUE_GRADES_SCHEMA, preserve_index=False))

    # -- reports
    def write_json(self, name: str, obj: object) -> None:
        atomic_write_text(self.dir / name, json.dumps(obj, indent=1, default=str))

    def read_summary(self) -> Optional[RunSummary]:
        p = self.dir / "summary.json"
        return RunSummary.model_validate_json(p.read_text()) if p.is_file() else None


def _read_rows(files_dir: Path, compacted: Path, schema: pa.Schema, key: Optional[str],
               subset: Optional[list[str]] = None) -> pd.DataFrame:
    tables = []
    if compacted.is_file():
        tables.append(pq.read_table(compacted, schema=schema))
    if files_dir.is_dir():
        for p in sorted(files_dir.glob("*.parquet")):
            try:
                tables.append(pq.read_table(p, schema=schema))
            except (OSError, pa.ArrowInvalid):
                continue  # written by a newer harness or being replaced; the next read sees it
    if not tables:
        return schema.empty_table().to_pandas()
    df = pa.concat_tables(tables).to_pandas()
    if key is not None:
        # the per-attempt file is the newest word on an attempt (a resume may have replaced it)
        df = df.drop_duplicates(subset=[key], keep="last")
    else:
        df = df.drop_duplicates(subset=subset or ["attempt_id", "check"], keep="last")
    return df.reset_index(drop=True)


def list_runs(root: Path | str | None = None) -> list[RunState]:
    """Every run in a store, newest first."""
    root = Path(root) if root is not None else default_store()
    states = []
    if root.is_dir():
        for d in root.iterdir():
            p = d / "run.json"
            if p.is_file():
                try:
                    states.append(RunState.model_validate_json(p.read_text()))
                except ValueError:
                    continue
    return sorted(states, key=lambda s: s.created_at, reverse=True)


def load_results(root: Path | str | None = None) -> pd.DataFrame:
    """Every attempt of every run under a store, as one DataFrame."""
    root = Path(root) if root is not None else default_store()
    frames = [RunStore(root, s.run_id).attempts() for s in list_runs(root)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return ATTEMPTS_SCHEMA.empty_table().to_pandas()
    return pd.concat(frames, ignore_index=True)
