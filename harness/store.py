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

import datetime as dt
import json
import os
import types
import typing
import uuid
from pathlib import Path
from typing import Any, Iterable, Optional

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from harness.safe_files import clip
from harness.spec import AttemptResult, CheckResult, RunState, RunSummary, technique_level_of, utcnow

TS = pa.timestamp("us", tz="UTC")
#: Arrow types of the Python types result models use (Literal -> string, Optional[X] -> X, nullable)
ARROW_TYPES: dict[Any, pa.DataType] = {str: pa.string(), int: pa.int32(), float: pa.float64(), bool: pa.bool_(), dt.datetime: TS}


def arrow_type(annotation: Any) -> pa.DataType:
    """The Arrow type of one field annotation of a flat result model."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return arrow_type(inner)
    if origin is typing.Literal:
        return pa.string()
    return ARROW_TYPES[annotation]


def arrow_schema(model: type[BaseModel], exclude: Iterable[str] = ()) -> pa.Schema:
    """One column per field of `model`, in field order: the result model is the schema."""
    skip = set(exclude)
    return pa.schema([(name, arrow_type(f.annotation)) for name, f in model.model_fields.items() if name not in skip])


#: the attempts table: exactly AttemptResult's fields
ATTEMPTS_SCHEMA = arrow_schema(AttemptResult)
#: technique_grades: which attempt, then CheckResult's fields
TECHNIQUE_GRADES_SCHEMA = pa.schema([("run_id", pa.string()), ("attempt_id", pa.string()), ("technique", pa.string()),
                                     *arrow_schema(CheckResult),
                                     ("level", pa.string())])  # technique tasks' difficulty; null for engineering tasks


class RunLocked(RuntimeError):
    """Another live process drives this run; the message names it."""


class DriverLock:
    """The one-driver-per-run claim: an exclusive, non-blocking flock on <run>/.driver.lock, held
    until `release` (or the process ends, whatever way: the kernel drops the lock with the fd).
    The file holds `host:pid` of the holder, for the refusal's message."""

    def __init__(self, run_dir: Path) -> None:
        import fcntl

        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / ".driver.lock"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLocked(f"run {run_dir.name} is already being driven by {holder} (it holds {self.path}); "
                            "wait for it to end or cancel it, then resume") from None
        import socket

        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{socket.gethostname()}:{os.getpid()}\n".encode(), 0)
        self.fd: Optional[int] = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __del__(self) -> None:
        self.release()
SCORE_DETAILS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("attempt_id", pa.string()), ("competition_id", pa.string()), ("seed", pa.int32()),
    ("group", pa.string()), ("score", pa.float64()),
])


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

    def claim_driver(self) -> DriverLock:
        """Become this run's only driver, or raise RunLocked naming the live one."""
        return DriverLock(self.dir)

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
        from harness import run_index  # the store's index of runs (harness/run_index.py) learns the new state
        run_index.note(self.root, state, self.state_path)

    # -- attempts
    @property
    def attempts_dir(self) -> Path:
        return self.dir / "attempts"

    def artifacts_dir(self, attempt_id: str) -> Path:
        return self.dir / "artifacts" / attempt_id

    def write_attempt(self, row: AttemptResult, checks: Iterable[CheckResult] = ()) -> None:
        """Durably record one finished attempt (replacing an earlier row of the same attempt)."""
        # agent-derived text is cut, so the row always fits (and never carries a whole file)
        row = row.model_copy(update={"invalid_reason": clip(row.invalid_reason, 500), "error": clip(row.error, 1000)})
        checks = list(checks)
        if checks:
            rows = [dict(run_id=row.run_id, attempt_id=row.attempt_id, technique=row.technique, **c.model_dump(),
                         level=technique_level_of(row.attempt_id)) for c in checks]
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


def _read_table(path: Path, schema: pa.Schema) -> pa.Table:
    """A Parquet file as `schema`; columns added to the schema since it was written read as nulls."""
    with pq.ParquetFile(path) as pf:  # issue 15 (scale): lighter than pq.read_table for 10,000 one-row files
        t = pf.read()
    for f in schema:
        if f.name not in t.column_names:
            t = t.append_column(f.name, pa.nulls(len(t), f.type))
    return t.select(schema.names).cast(schema)


def _read_rows(files_dir: Path, compacted: Path, schema: pa.Schema, key: Optional[str],
               subset: Optional[list[str]] = None) -> pd.DataFrame:
    tables = []
    if compacted.is_file():
        try:
            tables.append(_read_table(compacted, schema))
        except (OSError, pa.ArrowInvalid):
            pass  # a torn or corrupt compacted table: the per-attempt files rebuild it (compact rewrites it)
    if files_dir.is_dir():
        part: list[pa.Table] = []  # issue 15 (scale): one-row tables combined 256 at a time (10,000 held cost ~400 MB)
        for p in sorted(files_dir.glob("*.parquet")):
            try:
                part.append(_read_table(p, schema))
            except (OSError, pa.ArrowInvalid):
                continue  # written by a newer harness or being replaced; the next read sees it
            if len(part) == 256:
                tables.append(pa.concat_tables(part).combine_chunks())
                part = []
        tables += part
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
    if root.is_dir():  # through the index of runs, checked against every run.json (harness/run_index.py)
        from harness import run_index
        return run_index.list_states(root)
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
