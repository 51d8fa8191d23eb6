"""What each page shows, read from the store: plain data for the templates.

Nothing here knows a column by name except the few the store fixes (DESIGN.md §5):
tables render every column they find, so columns other modules add (LLM tokens and
cost, ...) and files they add (score_details.parquet, logs/trajectory.json,
logs/llm_calls.jsonl) appear without changes here.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.data import prepared_data
from harness.grading import competition_thresholds, read_leaderboard
from harness.report import mean_sem, summarize
from harness.spec import RunState, Settings
from harness.store import ATTEMPTS_SCHEMA, RunStore
from harness.ui import files
from harness.ui.access import Access, NotFound, Progress
from harness.ui.plots import AttemptMark, leaderboard_plot

ATTEMPTS_PER_PAGE = 100
RUNS_PER_PAGE = 50
#: columns summed into the run's LLM totals when present (any `*_tokens` column too)
_LLM_COLUMN = re.compile(r"^(llm_calls|cost_usd|.*_tokens)$")
#: columns the attempts table leaves out (same for every row, or shown elsewhere)
_HIDDEN = {"run_id", "artifacts_dir"}


def cell(v: Any) -> str:
    """Any table value as page text: numbers to 4 significant digits, times to the second, none as empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        return "" if pd.isna(v) else f"{v:%Y-%m-%d %H:%M:%S}"
    try:
        if pd.isna(v):
            return ""
    except (TypeError, ValueError):
        pass
    if hasattr(v, "item"):  # numpy scalars
        return cell(v.item())
    s = str(v)
    return s if len(s) <= 300 else s[:300] + "…"


def _val(v: Any) -> Any:
    """A table value as plain Python, NaN/NaT as None."""
    try:
        if v is None or pd.isna(v):
            return None
    except (TypeError, ValueError):
        return v
    return v.item() if hasattr(v, "item") else v


# ---------------------------------------------------------------- competitions and leaderboards


@functools.lru_cache(maxsize=1)
def _registry() -> Any:
    from harness.registry import load_registry  # the registry loads on the first plot, not at import

    return load_registry()


@functools.lru_cache(maxsize=256)
def leaderboard_scores(competition_id: str, lite: bool) -> tuple[float, ...]:
    """The leaderboard's scores of a competition (lite board for lite runs when it has one); () if none."""

    comp = _registry().competitions.get(competition_id)
    if comp is None:
        return ()
    try:
        lb = read_leaderboard(comp, lite)
    except (OSError, ValueError):
        return ()
    if lb is None or "score" not in lb.columns:
        return ()
    return tuple(float(x) for x in pd.to_numeric(lb["score"], errors="coerce").dropna())


@functools.lru_cache(maxsize=256)
def _registry_thresholds(competition_id: str, lite: bool) -> dict[str, Optional[float]]:

    comp = _registry().competitions.get(competition_id)
    t = competition_thresholds(comp, lite) if comp is not None else None
    if t is None:
        return {}
    return {"gold": t.gold, "silver": t.silver, "bronze": t.bronze, "median": t.median}


# ---------------------------------------------------------------- runs page


@dataclass
class RunRow:
    state: RunState
    progress: Progress
    valid_rate: Optional[float] = None
    medal_rate: Optional[float] = None


@dataclass
class RunFilters:
    agent: str = ""
    status: str = ""
    competition: str = ""

    def matches(self, state: RunState) -> bool:
        if self.agent and state.spec.agent != self.agent:
            return False
        if self.competition and self.competition not in state.spec.competitions:
            return False
        return True


def runs_page(access: Access, user: str, filters: RunFilters, offset: int) -> dict[str, Any]:
    """The runs the user may see, filtered, newest first, one page from `offset`."""
    states = access.runs(user)
    agents = sorted({s.spec.agent for s in states})
    comps = sorted({c for s in states for c in s.spec.competitions})
    chosen = [s for s in states if filters.matches(s)]
    pairs: list[tuple[RunState, Optional[Progress]]]
    if filters.status:
        with_progress = [(s, access.progress(RunStore(access.root, s.run_id), s)) for s in chosen]
        pairs = [(s, p) for s, p in with_progress if p.status == filters.status]
    else:
        pairs = [(s, None) for s in chosen]
    total = len(pairs)
    rows = []
    for s, p in pairs[offset:offset + RUNS_PER_PAGE]:
        rs = RunStore(access.root, s.run_id)
        prog = p or access.progress(rs, s)
        row = RunRow(state=s, progress=prog)
        summary = rs.read_summary() if not prog.live else None
        if summary is None and prog.live:
            df = rs.attempts()
            summary = summarize(s, df) if len(df) else None
        if summary is not None:
            row.valid_rate, row.medal_rate = summary.valid_submission_rate, summary.any_medal_rate
        rows.append(row)
    return dict(rows=rows, total=total, offset=offset, per_page=RUNS_PER_PAGE, agents=agents, competitions=comps,
                filters=filters, live=any(r.progress.live for r in rows),
                statuses=["queued", "running", "completed", "failed", "cancelled", "interrupted"])


# ---------------------------------------------------------------- run page


def read_extra_table(rs: RunStore, name: str) -> pd.DataFrame:
    """A per-attempt table another module writes (`<name>/*.parquet` while running, `<name>.parquet`
    compacted), read without knowing its schema; empty when absent."""
    tables = []
    paths = [rs.dir / f"{name}.parquet"]
    d = rs.dir / name
    if d.is_dir():
        paths += sorted(d.glob("*.parquet"))
    for p in paths:
        if p.is_file() and not p.is_symlink():
            try:
                tables.append(pq.read_table(p))
            except (OSError, pa.ArrowInvalid):
                continue
    if not tables:
        return pd.DataFrame()
    try:
        df = pa.concat_tables(tables, promote_options="default").to_pandas()
    except (pa.ArrowInvalid, TypeError):
        df = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    keys = [c for c in ("attempt_id", "group", "check") if c in df.columns]
    return df.drop_duplicates(subset=keys, keep="last").reset_index(drop=True) if keys else df


@dataclass
class CompetitionView:
    competition_id: str
    plot_svg: str
    stats: dict[str, Any]
    details: Optional[dict[str, Any]] = None  # {"groups": [...], "rows": [(attempt_id, seed, [cells])]}


@dataclass
class TechniqueView:
    name: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    score_mean: Optional[float] = None


def _medal(gold: Any, silver: Any, bronze: Any) -> str:
    return "gold" if gold is True else "silver" if silver is True else "bronze" if bronze is True else ""


def read_attempts(rs: RunStore) -> pd.DataFrame:
    """The run's attempts table. A finished run whose compacted attempts.parquet is newer than every
    per-attempt file is read from that one file (the store's reader opens them all), cached by its
    modification time and size."""
    compacted = rs.dir / "attempts.parquet"
    try:
        cst = os.stat(compacted)
        newest = max((e.stat().st_mtime_ns for e in os.scandir(rs.attempts_dir) if e.name.endswith(".parquet")),
                     default=0)
    except OSError:
        return rs.attempts()
    if newest > cst.st_mtime_ns:
        return rs.attempts()
    return _read_compacted(str(compacted), cst.st_mtime_ns, cst.st_size).copy()


@functools.lru_cache(maxsize=16)
def _read_compacted(path: str, mtime_ns: int, size: int) -> pd.DataFrame:

    return pq.read_table(path, schema=ATTEMPTS_SCHEMA).to_pandas()


def attempt_href(base: str, run_id: str, attempt_id: str) -> str:
    return f"{base}/runs/{run_id}/attempts/{attempt_id}"


_COMP_COLUMNS = ("attempt_id", "competition_id", "seed", "score", "valid_submission", "gold_medal", "silver_medal",
                 "bronze_medal", "any_medal", "above_median", "is_lower_better", "status", "gold_threshold",
                 "silver_threshold", "bronze_threshold", "median_threshold")


def _records(df: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows as plain dicts of Python values (NaN/NaT as None): iterating pandas rows is the slow part."""
    table = pa.Table.from_pandas(df[[c for c in columns if c in df.columns]], preserve_index=False)
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in table.to_pylist()]


def competition_views(base: str, state: RunState, df: pd.DataFrame, details: pd.DataFrame) -> list[CompetitionView]:
    """Per competition of the run: its plot (SVG) and medal-table numbers."""

    comp = df[df["task_kind"] == "competition"] if len(df) else df
    by_comp: dict[str, list[dict[str, Any]]] = {}
    for r in (_records(comp, _COMP_COLUMNS) if len(comp) else []):
        by_comp.setdefault(str(r["competition_id"]), []).append(r)
    out = []
    lite = bool(state.spec.lite)
    for cid in sorted(by_comp):
        recs = sorted(by_comp[cid], key=lambda r: (r["seed"], r["attempt_id"]))
        lowers = [r["is_lower_better"] for r in recs if r["is_lower_better"] is not None]
        lower_b = bool(lowers[0]) if lowers else None
        marks = [AttemptMark(attempt_id=str(r["attempt_id"]), seed=int(r["seed"]),
                             score=None if r["score"] is None or not r["valid_submission"] else float(r["score"]),
                             medal=_medal(r["gold_medal"], r["silver_medal"], r["bronze_medal"]),
                             href=attempt_href(base, state.run_id, str(r["attempt_id"])), status=str(r["status"]))
                 for r in recs]
        thresholds: dict[str, Optional[float]] = {}
        for name in ("gold", "silver", "bronze", "median"):
            vals = [r[f"{name}_threshold"] for r in recs if r.get(f"{name}_threshold") is not None]
            thresholds[name] = float(vals[0]) if vals else None
        if all(v is None for v in thresholds.values()):
            thresholds = dict(_registry_thresholds(cid, lite)) or thresholds
        svg = leaderboard_plot(cid, leaderboard_scores(cid, lite), thresholds, marks, lower_b)
        m, s = mean_sem([float(r["score"]) for r in recs if r["score"] is not None])

        def count(col: str, recs: list[dict[str, Any]] = recs) -> int:
            return sum(1 for r in recs if r.get(col) is True)

        stats = dict(attempts=len(recs), valid=count("valid_submission"), gold=count("gold_medal"),
                     silver=count("silver_medal"), bronze=count("bronze_medal"), any_medal=count("any_medal"),
                     above_median=count("above_median"), score_mean=m, score_sem=s, lower_is_better=lower_b,
                     thresholds=thresholds)
        view = CompetitionView(competition_id=cid, plot_svg=svg, stats=stats)
        if len(details) and {"attempt_id", "group", "score"} <= set(details.columns):
            mine = details[details["attempt_id"].isin({r["attempt_id"] for r in recs})]
            if len(mine):
                groups = sorted(str(x) for x in mine["group"].dropna().unique())
                table = mine.pivot_table(index="attempt_id", columns="group", values="score", aggfunc="last")
                seeds = {r["attempt_id"]: r["seed"] for r in recs}
                rows = [(aid, int(seeds.get(aid, 0)), [cell(table.at[aid, grp]) if grp in table.columns else ""
                                                      for grp in groups]) for aid in table.index]
                means = [cell(float(table[grp].mean())) if grp in table.columns else "" for grp in groups]
                view.details = {"groups": groups, "rows": sorted(rows, key=lambda r: r[1]), "means": means}
        out.append(view)
    return out


def technique_views(df: pd.DataFrame, grades: pd.DataFrame) -> list[TechniqueView]:
    tech = df[df["task_kind"] == "technique"] if len(df) else df
    out = []
    for name, g in (tech.groupby("technique", sort=True) if len(tech) else []):
        view = TechniqueView(name=str(name), score_mean=float(g["score"].fillna(0.0).mean()))
        for r in g.sort_values(["attempt_id"]).itertuples(index=False):
            checks = grades[grades["attempt_id"] == r.attempt_id] if len(grades) else grades
            view.attempts.append(dict(
                attempt_id=r.attempt_id, seed=int(r.seed), status=r.status, score=_val(r.score),
                passed=int(checks["passed"].fillna(False).sum()) if len(checks) else 0, checks_total=len(checks),
                checks=[dict(check=c.check, points=_val(c.points), max_points=_val(c.max_points), passed=bool(c.passed),
                             detail=c.detail or "") for c in checks.itertuples(index=False)]))
        out.append(view)
    return out


def llm_totals(df: pd.DataFrame) -> dict[str, float]:
    """Sums of the LLM columns the attempts table has (calls, tokens, cost in USD)."""
    out = {}
    for col in df.columns:
        if _LLM_COLUMN.match(str(col)) and pd.api.types.is_numeric_dtype(df[col]) and df[col].notna().any():
            out[str(col)] = float(df[col].fillna(0).sum())
    return out


def attempts_table(df: pd.DataFrame, page: int) -> dict[str, Any]:
    """One page of the attempts table: every column the store has, values as text."""
    cols = ["attempt_id"] + [c for c in df.columns if c not in _HIDDEN and c != "attempt_id"]
    pages = max(1, math.ceil(len(df) / ATTEMPTS_PER_PAGE))
    page = min(max(page, 1), pages)
    part = df.iloc[(page - 1) * ATTEMPTS_PER_PAGE: page * ATTEMPTS_PER_PAGE]
    rows = [[cell(r.get(c)) for c in cols] for r in _records(part, tuple(cols))] if len(part) else []
    return dict(columns=cols, rows=rows, page=page, pages=pages, total=len(df))


def in_flight(rs: RunStore, df: pd.DataFrame) -> list[str]:
    """Attempts that have an artifacts folder but no row yet (running, or cut off)."""
    d = rs.dir / "artifacts"
    try:
        names = sorted(n for n in os.listdir(d) if not n.startswith("."))
    except OSError:
        return []
    done = set(df["attempt_id"]) if len(df) else set()
    return [n for n in names if n not in done]


def run_page(access: Access, base: str, rs: RunStore, state: RunState, page: int) -> dict[str, Any]:
    """Everything the run page shows."""
    prog = access.progress(rs, state)
    df = read_attempts(rs) if not prog.live else rs.attempts()
    grades = rs.technique_grades()
    details = read_extra_table(rs, "score_details")
    summary = (rs.read_summary() if not prog.live else None) or summarize(state, df, grades)
    return dict(
        state=state, progress=prog, summary=summary, competitions=competition_views(base, state, df, details),
        techniques=technique_views(df, grades), llm=llm_totals(df), table=attempts_table(df, page),
        running=in_flight(rs, df) if prog.live else [],
        reports=[n for n in ("summary.json", "grading_report.json", "attempts.parquet", "technique_grades.parquet",
                             "score_details.parquet", "run.json") if (rs.dir / n).is_file()],
    )


# ---------------------------------------------------------------- attempt page


def _preview(root: Path, entry: files.FileEntry) -> dict[str, Any]:
    """How one file shows inline: an image, a table (CSV), pretty JSON, or text (capped)."""
    out: dict[str, Any] = dict(path=entry.path, name=entry.name, size=entry.size, kind="download")
    if entry.is_image:
        out["kind"] = "image"
        return out
    if entry.suffix not in files.TEXT_SUFFIXES and entry.size > 0:
        return out
    try:
        data, size = files.read_capped(root, entry.path, files.PREVIEW_BYTES)
    except files.UnsafePath:
        out["kind"] = "refused"
        return out
    out["truncated"] = size > len(data)
    if entry.suffix in (".csv", ".tsv"):
        try:
            table = pd.read_csv(io.BytesIO(data), sep="\t" if entry.suffix == ".tsv" else ",", nrows=20)
            out.update(kind="table", columns=[str(c) for c in table.columns],
                       rows=[[cell(v) for v in r] for r in table.itertuples(index=False, name=None)])
            return out
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
            pass
    if entry.suffix == ".json" and not out["truncated"]:
        try:
            out.update(kind="text", text=json.dumps(json.loads(data), indent=1)[: files.PREVIEW_BYTES])
            return out
        except ValueError:
            pass
    out.update(kind="text", text=files.decode_text(data))
    return out


def _trajectory_steps(doc: Any) -> list[dict[str, Any]]:
    """The steps of a trajectory.json, whatever its exact shape: a list of steps, or an object
    holding one under `steps`/`trajectory`/`messages`. Each step becomes (title, fields)."""
    steps = doc
    if isinstance(doc, dict):
        for key in ("steps", "trajectory", "messages", "events"):
            if isinstance(doc.get(key), list):
                steps = doc[key]
                break
        else:
            steps = [doc]
    if not isinstance(steps, list):
        return []
    out = []
    for i, step in enumerate(steps[:2000]):
        if not isinstance(step, dict):
            out.append(dict(index=i, title=f"step {i}", fields=[("value", _pretty(step))]))
            continue
        title = " · ".join(str(step[k]) for k in ("step", "role", "type", "name", "source") if k in step and step[k] is not None)
        fields = [(str(k), _pretty(v)) for k, v in step.items()]
        out.append(dict(index=i, title=title or f"step {i}", fields=fields))
    return out


def _pretty(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, indent=1, default=str)
    return s if len(s) <= 20_000 else s[:20_000] + "\n… (cut; download the file for all of it)"


def _jsonl_rows(root: Path, path: str, limit: int = 200) -> dict[str, Any]:
    """The first `limit` records of a JSON-lines file as a table over the union of their keys."""
    try:
        data, size = files.read_capped(root, path, files.PREVIEW_BYTES)
    except files.UnsafePath:
        return dict(columns=[], rows=[], truncated=False)
    records = []
    for line in data.splitlines()[:limit]:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    cols: list[str] = []
    for rec in records:
        cols += [str(k) for k in rec if str(k) not in cols]
    rows = [[cell(r.get(c)) if not isinstance(r.get(c), (dict, list)) else _pretty(r.get(c))[:300] for c in cols] for r in records]
    return dict(columns=cols, rows=rows, truncated=size > len(data) or len(data.splitlines()) > limit)


def attempt_page(access: Access, rs: RunStore, state: RunState, attempt_id: str) -> dict[str, Any]:
    """Everything the attempt page shows; raises NotFound for an attempt the run does not have."""

    try:
        files.check_relative(attempt_id)
    except files.UnsafePath:
        raise NotFound(f"no attempt {attempt_id!r}") from None
    if "/" in attempt_id:
        raise NotFound(f"no attempt {attempt_id!r}")
    df = rs.attempts()
    row_df = df[df["attempt_id"] == attempt_id] if len(df) else df
    art = f"artifacts/{attempt_id}"
    art_dir = rs.dir / "artifacts" / attempt_id
    if row_df.empty and (not art_dir.is_dir() or art_dir.is_symlink()):
        raise NotFound(f"no attempt {attempt_id!r} in run {state.run_id}")
    row = {str(k): _val(v) for k, v in row_df.iloc[0].items()} if len(row_df) else None
    prog = access.progress(rs, state)
    listed = files.list_files(rs.dir, art)
    groups: dict[str, list[files.FileEntry]] = {}
    for e in listed:
        sub = e.path[len(art) + 1:].split("/", 1)
        groups.setdefault(sub[0] if len(sub) > 1 else "", []).append(e)
    grades = rs.technique_grades()
    checks = grades[grades["attempt_id"] == attempt_id] if len(grades) else grades
    details = read_extra_table(rs, "score_details")
    if len(details) and "attempt_id" in details.columns:
        details = details[details["attempt_id"] == attempt_id]
    special = {f"{art}/logs/agent.log", f"{art}/logs/sandbox.json", f"{art}/logs/trajectory.json", f"{art}/logs/llm_calls.jsonl"}
    trajectory = files.read_json(rs.dir, f"{art}/logs/trajectory.json")
    names = {e.path for e in listed}
    return dict(
        state=state, progress=prog, attempt_id=attempt_id, row=row,
        finished=row is not None and row.get("status") != "cancelled",
        live=row is None and prog.live,
        sandbox=files.read_json(rs.dir, f"{art}/logs/sandbox.json"),
        log=log_tail(rs, attempt_id),
        code=[_preview(rs.dir, e) for e in groups.get("code", [])][:50],
        submission=[_preview(rs.dir, e) for e in groups.get("submission", [])][:50],
        other_logs=[_preview(rs.dir, e) for e in groups.get("logs", []) if e.path not in special][:50],
        trajectory=_trajectory_steps(trajectory) if trajectory is not None else None,
        llm_calls=_jsonl_rows(rs.dir, f"{art}/logs/llm_calls.jsonl") if f"{art}/logs/llm_calls.jsonl" in names else None,
        checks=[dict(check=c.check, points=_val(c.points), max_points=_val(c.max_points), passed=bool(c.passed),
                     detail=c.detail or "") for c in checks.itertuples(index=False)],
        details=[{str(k): cell(v) for k, v in r.items() if k not in ("run_id", "attempt_id")}
                 for r in details.to_dict("records")] if len(details) else [],
        files=listed, has_trajectory_file=f"{art}/logs/trajectory.json" in names,
        inputs=image_predictions(rs, state, row, attempt_id),
    )


#: how many of a submission's rows an image competition's preview shows with their input image
INPUT_IMAGES = 12


def public_dir(competition_id: str, lite: bool) -> Optional[Path]:
    """The competition's prepared public data on this machine (what the agent saw), if it is here."""

    comp = _registry().competitions.get(competition_id)
    if comp is None:
        return None
    try:
        done = prepared_data(comp, Settings.from_env(), lite)
    except (OSError, ValueError):
        return None
    return done.public if done is not None else None


def input_image_name(public: Path, ident: str) -> Optional[str]:
    """The public file (relative to `public`) holding the input image of a submission row's id."""
    for folder in ("test", "images", ""):
        for suffix in (".png", ".jpg", ".jpeg"):
            rel = f"{folder}/{ident}{suffix}" if folder else f"{ident}{suffix}"
            try:
                files.check_relative(rel)
            except files.UnsafePath:
                return None
            if (public / rel).is_file() and not (public / rel).is_symlink():
                return rel
    return None


def image_predictions(rs: RunStore, state: RunState, row: Optional[dict[str, Any]], attempt_id: str) -> list[dict[str, Any]]:
    """For an image competition: the submission's first rows, each with its test image's public path."""
    if not row or row.get("task_kind") != "competition":
        return []
    cid = str(row.get("competition_id"))
    comp = _registry().competitions.get(cid)
    if comp is None or "image" not in str(comp.kind):
        return []
    public = public_dir(cid, bool(state.spec.lite))
    if public is None:
        return []
    try:
        data, _ = files.read_capped(rs.dir, f"artifacts/{attempt_id}/submission/submission.csv", files.PREVIEW_BYTES)
        sub = pd.read_csv(io.BytesIO(data), nrows=INPUT_IMAGES)
    except (files.UnsafePath, ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return []
    out = []
    for r in sub.itertuples(index=False, name=None):
        rel = input_image_name(public, str(r[0]))
        if rel is not None:
            out.append(dict(id=str(r[0]), cells=[f"{c}={cell(v)}" for c, v in zip(sub.columns[1:], r[1:], strict=False)],
                            image=rel))
    return out


def log_tail(rs: RunStore, attempt_id: str) -> dict[str, Any]:
    """The end of the attempt's agent.log (at most PREVIEW_BYTES), its size, whether it was cut."""
    path = f"artifacts/{attempt_id}/logs/agent.log"
    try:
        data, size = files.read_tail(rs.dir, path, files.PREVIEW_BYTES)
    except files.UnsafePath:
        return dict(path=path, text=None, size=0, truncated=False)
    return dict(path=path, text=files.decode_text(data), size=size, truncated=size > len(data))


def attempt_row(rs: RunStore, attempt_id: str) -> Optional[dict[str, Any]]:
    """The attempt's recorded row as plain values, or None."""
    df = rs.attempts()
    hit = df[df["attempt_id"] == attempt_id] if len(df) else df
    return {str(k): _val(v) for k, v in hit.iloc[0].items()} if len(hit) else None
