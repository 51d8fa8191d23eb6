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

A store may also be an object-store URI (`s3://bucket/prefix`, see harness/objstore.py):
`RunStore` then works in a local mirror of it and copies each file there as it is written
(an attempt's row last, after its artifacts, on `publish_attempt`), and readers pull first.
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
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel

from harness import run_index
from harness.objstore import RemoteStore, is_remote, local_path_of, open_remote, safe_run_id
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

    NAME = ".driver.lock"

    def __init__(self, run_dir: Path) -> None:
        import fcntl

        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / self.NAME
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

    @staticmethod
    def holder(run_dir: Path) -> Optional[str]:
        """Who holds `run_dir`'s driver lock now (`host:pid`), or None; creates and changes nothing."""
        import fcntl

        try:
            fd = os.open(run_dir / DriverLock.NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None  # never claimed (or no such run)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken for an instant: closing drops it
        except BlockingIOError:
            return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        finally:
            os.close(fd)
        return None

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


def store_location(store: Path | str | None) -> Path | str:
    """A --store value as the store it names: an object-store URI as given (a str), anything
    else (a path, `file://...`) as a local Path; None reads HARNESS_RUNS_DIR (default ./runs)."""
    if store is None:
        store = os.environ.get("HARNESS_RUNS_DIR") or "runs"
    if is_remote(store):
        return str(store)
    return local_path_of(store) if isinstance(store, str) else Path(store)


def open_store(store: Path | str | None, write: bool = False) -> Path | str:
    """`store_location`, checked: an object store must answer, have its bucket and (with `write`)
    take a write; a local store is left to its users. Raises StoreError (one line, no secrets)."""
    where = store_location(store)
    if isinstance(where, str):
        remote = open_remote(where)
        if write:
            remote.check(write=True)
    return where


def local_root(where: Path | str) -> Path:
    """The local directory a store is worked in: the path itself, or an object store's mirror."""
    return open_remote(where).mirror if isinstance(where, str) else Path(where)


#: sub-folders of a run with one file per attempt (pulled with the run's tables)
ROW_DIRS = ("attempts", "technique_grades", "score_details")
#: on an object store: one empty file per row recorded in the mirror and not yet uploaded
UNSENT_DIR = ".unsent"


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
        where = store_location(root)
        #: the object store when `root` is a URI; `root` is then its local mirror
        self.remote: Optional[RemoteStore] = open_remote(where) if isinstance(where, str) else None
        self.root = self.remote.mirror if self.remote is not None else Path(where)
        self.run_id = run_id
        self.dir = self.root / run_id
        self._driving = False
        self._pending: list[Path] = []  # written, to be uploaded by publish_attempt (rows last)
        self._fetched: set[str] = set()  # attempts whose artifacts this reader pulled
        if self.remote is not None:
            if not safe_run_id(run_id):
                raise RunNotFound(run_id)
            self.remote.pull(run_id, dirs=ROW_DIRS)

    @property
    def location(self) -> str:
        """Where the run lives, for messages: the store URI (no secrets) and run id, or the run's folder."""
        return f"{self.remote.shown.split('?')[0].rstrip('/')}/{self.run_id}" if self.remote else str(self.dir)

    def claim_driver(self) -> DriverLock:
        """Become this run's only driver, or raise RunLocked naming the live one. On an object
        store: first upload what an earlier driver on this machine recorded but had not sent yet
        (it was killed in between), and fetch the attempts' report files a resume rebuilds from."""
        lock = DriverLock(self.dir)
        if self.remote is not None:
            self._driving = True
            self.remote.pull(f"{self.run_id}/artifacts", recursive=True, only=lambda n: n.endswith("/competition_report.json"))
            sent = {i.base_name for i in self.remote.listing(f"{self.run_id}/attempts")}
            local = {p.stem for p in self.attempts_dir.glob("*.parquet")} if self.attempts_dir.is_dir() else set()
            for info in self.remote.listing(f"{self.run_id}/artifacts"):
                if info.type == pafs.FileType.Directory and f"{info.base_name}.parquet" not in sent and info.base_name not in local:
                    self.remote.delete_tree(f"{self.run_id}/artifacts/{info.base_name}")  # an unfinished try's files
            if self.attempts_dir.is_dir():
                for p in sorted(self.attempts_dir.glob("*.parquet")):
                    if (p.name not in sent or self._unsent(p.stem).exists()) and not p.name.startswith("."):
                        self._queue(self.dir / "technique_grades" / p.name)
                        self._queue(self.dir / "score_details" / p.name)
                        self._queue(p)
                        self.publish_attempt(p.stem)
        return lock

    # -- the object store (no-ops for a local store)
    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _send(self, path: Path) -> None:
        """Upload one file just written (a no-op for a local store)."""
        if self.remote is not None and path.is_file():
            self.remote.upload_file(path, self._rel(path))

    def _queue(self, path: Path) -> None:
        if self.remote is not None and path not in self._pending:
            self._pending.append(path)

    def publish_attempt(self, attempt_id: str, replace: bool = False) -> None:
        """On an object store: upload the attempt's artifacts, then its grades and sub-scores,
        then its row, last, so a row there always has its artifacts beside it. A no-op locally.
        `write_attempt` and `write_score_details` leave their files for this call. `replace`: the
        mirror holds all of this try's artifacts, so what the store holds of an earlier try goes
        first (its row before its files, so no row is ever there without its artifacts)."""
        if self.remote is None:
            return
        artifacts = f"{self.run_id}/artifacts/{attempt_id}"
        if replace:
            self.remote.delete_file(f"{self.run_id}/attempts/{attempt_id}.parquet")
        self.remote.upload_tree(self.artifacts_dir(attempt_id), artifacts, replace=replace)
        mine = [p for p in self._pending if p.stem == attempt_id]
        mine.sort(key=lambda p: p.parent.name == "attempts")  # the row last
        for p in mine:
            self._send(p)
            self._pending.remove(p)
        if not any(p.stem == attempt_id for p in self._pending):
            self._unsent(attempt_id).unlink(missing_ok=True)

    def _unsent(self, attempt_id: str) -> Path:
        """The journal entry of a row recorded here and not yet on the object store (it may replace
        a row the store already holds, e.g. a cancelled attempt run again: a name seen there is no proof)."""
        return self.dir / UNSENT_DIR / attempt_id

    def _flush(self) -> None:
        for aid in dict.fromkeys(p.stem for p in list(self._pending)):
            self.publish_attempt(aid)

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
        self._send(self.state_path)
        run_index.note(self.root, state, self.state_path)  # the store's index of runs learns the new state

    # -- attempts
    @property
    def attempts_dir(self) -> Path:
        return self.dir / "attempts"

    def artifacts_dir(self, attempt_id: str) -> Path:
        """The attempt's artifacts folder (a reader of an object store fetches it into the mirror first)."""
        if self.remote is not None and not self._driving and attempt_id not in self._fetched and safe_run_id(attempt_id):
            self._fetched.add(attempt_id)
            # a driver on this machine works in these mirror folders (a same-node attempt runs in its own):
            # a folder it made holds what is newer than the bucket, and an earlier try's files must not come
            # back into it; an attempt that ran on another node has no folder here, and is fetched
            local = self.dir / "artifacts" / attempt_id
            if DriverLock.holder(self.dir) is None or not os.path.lexists(local):
                self.remote.pull(f"{self.run_id}/artifacts/{attempt_id}", recursive=True)
        return self.dir / "artifacts" / attempt_id

    def write_attempt(self, row: AttemptResult, checks: Iterable[CheckResult] = ()) -> None:
        """Durably record one finished attempt (replacing an earlier row of the same attempt)."""
        # agent-derived text is cut, so the row always fits (and never carries a whole file)
        row = row.model_copy(update={"invalid_reason": clip(row.invalid_reason, 500), "error": clip(row.error, 1000)})
        if self.remote is not None:  # journal: this row is not on the object store until publish_attempt says so
            self._unsent(row.attempt_id).parent.mkdir(parents=True, exist_ok=True)
            self._unsent(row.attempt_id).touch()
        checks = list(checks)
        if checks:
            rows = [dict(run_id=row.run_id, attempt_id=row.attempt_id, technique=row.technique, **c.model_dump(),
                         level=technique_level_of(row.attempt_id)) for c in checks]
            _write_table(self.dir / "technique_grades" / f"{row.attempt_id}.parquet",
                         pa.Table.from_pylist(rows, schema=TECHNIQUE_GRADES_SCHEMA))
            self._queue(self.dir / "technique_grades" / f"{row.attempt_id}.parquet")
        _write_table(self.attempts_dir / f"{row.attempt_id}.parquet",
                     pa.Table.from_pylist([row.model_dump()], schema=ATTEMPTS_SCHEMA))
        self._queue(self.attempts_dir / f"{row.attempt_id}.parquet")

    def write_score_details(self, row: AttemptResult, details: dict[str, float]) -> None:
        """Record an attempt's sub-scores (group -> score) next to its row; nothing when there are none."""
        if details:
            rows = [dict(run_id=row.run_id, attempt_id=row.attempt_id, competition_id=row.competition_id,
                         seed=row.seed, group=g, score=float(v)) for g, v in details.items()]
            _write_table(self.dir / "score_details" / f"{row.attempt_id}.parquet",
                         pa.Table.from_pylist(rows, schema=SCORE_DETAILS_SCHEMA))
            self._queue(self.dir / "score_details" / f"{row.attempt_id}.parquet")

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
            self._send(self.dir / "score_details.parquet")

    def attempts(self) -> pd.DataFrame:
        """Every recorded attempt of this run, one row each."""
        return _read_rows(self.attempts_dir, self.dir / "attempts.parquet", ATTEMPTS_SCHEMA, "attempt_id")

    def technique_grades(self) -> pd.DataFrame:
        return _read_rows(self.dir / "technique_grades", self.dir / "technique_grades.parquet",
                          TECHNIQUE_GRADES_SCHEMA, None)

    def compact(self) -> None:
        """Rewrite attempts.parquet (and technique_grades.parquet) from the per-attempt files
        (on an object store: after sending any per-attempt file still unsent)."""
        self._flush()
        df = self.attempts()
        _write_table(self.dir / "attempts.parquet", pa.Table.from_pandas(df, schema=ATTEMPTS_SCHEMA, preserve_index=False))
        self._send(self.dir / "attempts.parquet")
        tg = self.technique_grades()
        if len(tg):
            _write_table(self.dir / "technique_grades.parquet",
                         pa.Table.from_pandas(tg, schema=TECHNIQUE_GRADES_SCHEMA, preserve_index=False))
            self._send(self.dir / "technique_grades.parquet")

    # -- reports
    def write_json(self, name: str, obj: object) -> None:
        atomic_write_text(self.dir / name, json.dumps(obj, indent=1, default=str))
        self._send(self.dir / name)

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
    where = store_location(root)
    ids: Optional[set[str]] = None
    if isinstance(where, str):  # an object store: its runs' run.json into the mirror, then as below
        remote = open_remote(where)
        ids = {d for d in remote.pull("", dirs=()) if safe_run_id(d)}
        remote.fetch_if_stale(sorted(f"{d}/run.json" for d in ids))
        where = remote.mirror
    root = where
    if root.is_dir():  # through the index of runs, checked against every run.json (harness/run_index.py)
        return [s for s in run_index.list_states(root) if ids is None or s.run_id in ids]  # ids: gone from the object store
    return []


def load_results(root: Path | str | None = None) -> pd.DataFrame:
    """Every attempt of every run under a store, as one DataFrame."""
    root = store_location(root)
    frames = [RunStore(root, s.run_id).attempts() for s in list_runs(root)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return ATTEMPTS_SCHEMA.empty_table().to_pandas()
    return pd.concat(frames, ignore_index=True)
