"""Grade one submission the way mlebench does: score rounded to 5 decimals, medal
thresholds and median from the competition's leaderboard, and a one-line reason when
invalid; mlebench's report form (`mlebench_report`, `aggregate_reports`).

`check_submission_format` is shared with the in-sandbox validator
(`python3 -m harness.validate`), which checks format only and never scores.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from harness.registry import load_callable
from harness.safe_files import UnsafeFile, clip, read_beneath
from harness.spec import CompetitionConfig, GradeReport


class InvalidSubmissionError(ValueError):
    """Raised by graders (and the format check) with a one-line reason."""


# ---------------------------------------------------------------- reading and format


#: the largest submission read at all (bytes); a larger one is invalid without being read
MAX_SUBMISSION_BYTES = 256 * 1024**2


def read_submission(source: Path | bytes | None, name: str = "submission.csv") -> pd.DataFrame:
    """Parse a submission CSV (a path, or its bytes) or raise InvalidSubmissionError saying why not.

    A path is opened without following any symlink, and must be a regular file with one
    link and at most MAX_SUBMISSION_BYTES; the reason of a refusal names the rule."""
    if source is None:
        raise InvalidSubmissionError(f"no {name} was written to the submission directory")
    if isinstance(source, Path):
        try:
            data = read_beneath(source.parent, source.name, MAX_SUBMISSION_BYTES)
        except FileNotFoundError:
            raise InvalidSubmissionError(f"no {name} was written to the submission directory") from None
        except UnsafeFile as e:
            raise InvalidSubmissionError(f"{name} refused: {clip(str(e))}") from None
        except OSError as e:
            raise InvalidSubmissionError(f"{name} could not be read: {e.strerror}") from None
    else:
        data = source
    if len(data) > MAX_SUBMISSION_BYTES:
        raise InvalidSubmissionError(f"{name} is over the {MAX_SUBMISSION_BYTES // 1024**2} MB limit")
    if not data.strip():
        raise InvalidSubmissionError(f"{name} is empty")
    if data[:4] == b"PAR1":  # a Parquet submission (submission.parquet), as some Kaggle competitions take
        return read_parquet_submission(data, name)
    if b"\x00" in data[:4096]:
        raise InvalidSubmissionError(f"{name} is not a CSV file (it holds binary data)")
    try:
        df = pd.read_csv(io.BytesIO(data), float_precision="round_trip")  # as mlebench reads it
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise InvalidSubmissionError(f"{name} is not a readable CSV: {clip(str(e).splitlines()[0] if str(e) else '')}") from None
    if df.empty:
        raise InvalidSubmissionError(f"{name} has a header but no rows")
    return df


def check_submission_format(submission: pd.DataFrame, reference: pd.DataFrame) -> None:
    """Check columns, ids and values of `submission` against `reference` (the sample
    submission or the answers, whose first column is the id). Raises with the first problem."""
    ref_cols = list(reference.columns)
    id_col = ref_cols[0]
    missing = [c for c in ref_cols if c not in submission.columns]
    extra = [c for c in submission.columns if c not in ref_cols]
    if missing or extra:
        parts = ([f"missing column(s) {_short(missing)}"] if missing else []) + \
                ([f"unexpected column(s) {_short(extra)}"] if extra else [])
        raise InvalidSubmissionError(f"{' and '.join(parts)}; expected columns {_short(ref_cols)}")
    # object arrays of str: iterating pandas' Arrow-backed strings costs ~1 s per million ids
    sub_ids = pd.Index(submission[id_col].astype(str).to_numpy(dtype=object))
    ref_ids = reference[id_col].astype(str).to_numpy(dtype=object)
    if sub_ids.has_duplicates:
        dup = sub_ids[sub_ids.duplicated()]
        raise InvalidSubmissionError(f"{len(dup)} duplicated {id_col} value(s), e.g. {dup[0]!r}")
    sub_set, ref_set = set(sub_ids), set(ref_ids)
    if ref_set - sub_set:
        missing_ids = sorted(ref_set - sub_set)
        raise InvalidSubmissionError(f"{len(missing_ids)} {id_col} value(s) missing, e.g. {missing_ids[0]!r}")
    if sub_set - ref_set:
        extra_ids = sorted(sub_set - ref_set)
        raise InvalidSubmissionError(f"{len(extra_ids)} unknown {id_col} value(s), e.g. {extra_ids[0]!r}")
    for col in ref_cols[1:]:
        values = submission[col]
        if values.isna().any():
            raise InvalidSubmissionError(f"column {col!r} has {int(values.isna().sum())} empty/NaN value(s)")
        if pd.api.types.is_numeric_dtype(reference[col]) and not pd.api.types.is_bool_dtype(reference[col]):
            numeric = pd.to_numeric(values, errors="coerce")
            if numeric.isna().any():
                bad = values[numeric.isna()].iloc[0]
                raise InvalidSubmissionError(f"column {col!r} must be numeric, found {bad!r}")
            if not np.isfinite(numeric.to_numpy(dtype=float)).all():
                raise InvalidSubmissionError(f"column {col!r} has infinite value(s)")


def align_to(submission: pd.DataFrame, answers: pd.DataFrame) -> pd.DataFrame:
    """The submission's rows in the answers' id order (after the format check passed)."""
    id_col = answers.columns[0]
    sub = submission.copy()
    sub[id_col] = sub[id_col].astype(str)
    order = answers[id_col].astype(str)
    return sub.set_index(id_col).loc[order].reset_index()


def _short(items: list[str], n: int = 6) -> str:
    shown = ", ".join(repr(str(i)) for i in items[:n])
    return shown + (f" (+{len(items) - n} more)" if len(items) > n else "")


# ---------------------------------------------------------------- medals (mlebench's rules, exactly)


@dataclass(frozen=True)
class Thresholds:
    gold: float
    silver: float
    bronze: float
    median: float
    lower_is_better: bool


def medal_ranks(num_teams: int) -> tuple[int, int, int]:
    """(gold, silver, bronze) leaderboard positions (1-based) by number of teams, as in
    mlebench's `Grader.rank_score` (kaggle.com/progression)."""
    n = num_teams
    if n < 1:
        raise ValueError("the leaderboard has no teams")
    if n < 100:
        return max(1, int(0.1 * n)), max(1, int(0.2 * n)), max(1, int(0.4 * n))
    if n < 250:
        return 10, max(1, int(0.2 * n)), max(1, int(0.4 * n))
    if n < 1000:
        return 10 + int(0.002 * n), 50, 100
    return 10 + int(0.002 * n), max(1, int(0.05 * n)), max(1, int(0.1 * n))


def is_lower_better(scores: pd.Series) -> bool:
    """mlebench's rule: lower is better when the leaderboard's first score is below its last."""
    return bool(scores.iloc[0] < scores.iloc[-1])


def leaderboard_thresholds(scores: pd.Series, lower_is_better: Optional[bool] = None) -> Thresholds:
    """Medal thresholds and median from a leaderboard's `score` column as mlebench takes them:
    the scores at the medal positions in the file's own row order (best first, as Kaggle
    publishes it; never re-sorted), and pandas' `Series.median()`; all unrounded floats.
    The direction is mlebench's rule (`is_lower_better`) unless `lower_is_better` is given."""
    s = scores.reset_index(drop=True)
    if s.empty:
        raise ValueError("leaderboard has no scores")
    g, sv, b = medal_ranks(len(s))
    lower = is_lower_better(s) if lower_is_better is None else lower_is_better
    return Thresholds(float(s.iloc[g - 1]), float(s.iloc[sv - 1]), float(s.iloc[b - 1]), float(s.median()), lower)


def read_leaderboard(comp: CompetitionConfig, lite: bool = False) -> Optional[pd.DataFrame]:
    """The competition's leaderboard; for a lite attempt `leaderboard.lite.csv` (calibrated on the
    lite data) when the competition has one, else `leaderboard.csv`."""
    lite_path = comp.dir / "leaderboard.lite.csv"
    path = lite_path if lite and lite_path.is_file() else comp.dir / "leaderboard.csv"
    return pd.read_csv(path) if path.is_file() else None  # plain read_csv, as mlebench's get_leaderboard


def competition_thresholds(comp: CompetitionConfig, lite: bool = False) -> Optional[Thresholds]:
    """The thresholds of `comp`'s leaderboard, or None when it has no leaderboard with scores."""
    lb = read_leaderboard(comp, lite)
    if lb is None or "score" not in lb.columns or lb.empty:
        return None
    return leaderboard_thresholds(lb["score"])


def rank_score(score: Optional[float], t: Thresholds) -> dict[str, bool]:
    """Medals and above-median for an (already rounded) score: ties win a medal, the median
    comparison is strict; no score wins nothing. `awards_medals` plays no part (as in mlebench)."""
    if score is None:
        return dict(gold_medal=False, silver_medal=False, bronze_medal=False, any_medal=False, above_median=False)
    def better_eq(x: float) -> bool:
        return score <= x if t.lower_is_better else score >= x

    gold = better_eq(t.gold)
    silver = not gold and better_eq(t.silver)
    bronze = not gold and not silver and better_eq(t.bronze)
    above = score < t.median if t.lower_is_better else score > t.median
    return dict(gold_medal=bool(gold), silver_medal=bool(silver), bronze_medal=bool(bronze),
                any_medal=bool(gold or silver or bronze), above_median=bool(above))


# ---------------------------------------------------------------- grading

#: suffixes a submission file may have: mlebench grades `.csv` only (anything else counts
#: as no submission); harness's own competitions also take `.parquet`
MLEBENCH_SUFFIXES = (".csv",)
BUILTIN_SUFFIXES = (".csv", ".parquet")
MAX_REASON_CHARS = 300


def accepted_suffixes(comp: CompetitionConfig) -> tuple[str, ...]:
    """The submission file suffixes `comp` grades (lower case, with the dot)."""
    return BUILTIN_SUFFIXES if comp.source == "builtin" else MLEBENCH_SUFFIXES


def grade_submission(
    comp: CompetitionConfig,
    submission: Path | bytes | None,
    answers_path: Path,
    sample_submission_path: Optional[Path] = None,
    lite: bool = False,
    submission_path: Optional[str] = None,
) -> GradeReport:
    """Grade one submission as `mlebench grade-sample` does and never raise for anything the agent
    wrote. `submission` is a file (its suffix must be `.csv`, or `.parquet` for a built-in
    competition, else it counts as absent), its CSV bytes, or None (absent). The grader's score
    is rounded to 5 decimals before it meets the leaderboard's unrounded thresholds. Built-in
    competitions also check the format against `sample_submission_path`; for any other
    competition its own grader alone decides validity, and any exception it raises is an
    invalid submission whose `invalid_reason` is the exception's message. `submission_path`
    is what the report names (default: the file's path, or empty for bytes)."""
    t0 = time.perf_counter()
    if isinstance(submission, Path):
        exists = _is_file(submission) and submission.suffix.lower() in accepted_suffixes(comp)
        shown = str(submission) if submission_path is None else submission_path
    else:
        exists, shown = submission is not None, submission_path or ""
    base: dict[str, Any] = dict(competition_id=comp.id, submission_exists=exists, submission_path=shown)
    thresholds = competition_thresholds(comp, lite)
    if thresholds is not None:
        base.update(gold_threshold=thresholds.gold, silver_threshold=thresholds.silver,
                    bronze_threshold=thresholds.bronze, median_threshold=thresholds.median,
                    is_lower_better=thresholds.lower_is_better)
    elif comp.lower_is_better is not None:
        base["is_lower_better"] = comp.lower_is_better

    def invalid(reason: str) -> GradeReport:
        return GradeReport(**base, valid_submission=False, invalid_reason=_clip(reason),
                           grade_seconds=time.perf_counter() - t0)

    if not exists:
        if isinstance(submission, Path) and _is_file(submission):
            return invalid(f"{submission.name}: a submission must be a {' or '.join(accepted_suffixes(comp))} file")
        name = submission.name if isinstance(submission, Path) else "submission.csv"
        return invalid(f"no {name} was written to the submission directory" if not isinstance(submission, Path)
                       else f"no submission file at {submission}")
    try:
        sub = read_submission(submission, submission.name if isinstance(submission, Path) else "submission.csv")
        if comp.source == "builtin" and sample_submission_path is not None and sample_submission_path.is_file():
            check_submission_format(sub, read_sample(sample_submission_path))  # harness's own graders expect it
    except InvalidSubmissionError as e:
        return invalid(str(e))
    answers = read_answers(answers_path)
    grade_fn = load_callable(comp.dir, comp.grader["grade_fn"], "grader.grade_fn")
    try:
        raw = grade_fn(sub, answers)
        score = float(round(raw, 5))  # mlebench's Grader: round(score, 5), then every comparison
    except Exception as e:  # as mlebench: any exception of the grader is an invalid submission
        return invalid(str(e).strip() or type(e).__name__)
    if not math.isfinite(score):
        return invalid(f"the grader produced a non-finite score ({score})")
    report = dict(base, score=score, valid_submission=True, details=score_details(comp, sub, answers))
    if thresholds is not None:
        report.update(rank_score(score, thresholds))
    return GradeReport(**report, grade_seconds=time.perf_counter() - t0)


def read_parquet_submission(data: bytes, name: str = "submission.parquet") -> pd.DataFrame:
    """Parse a Parquet submission's bytes or raise InvalidSubmissionError saying why not."""
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise InvalidSubmissionError(f"{name} is not a readable Parquet file: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if df.empty:
        raise InvalidSubmissionError(f"{name} has columns but no rows")
    return df


def read_sample(path: Path) -> pd.DataFrame:
    """A sample submission (or any reference table) from its .csv or .parquet file."""
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def score_details(comp: CompetitionConfig, submission: pd.DataFrame, answers: pd.DataFrame | Path) -> dict[str, float]:
    """Sub-scores (group name -> score, e.g. "type:0005", "lead:V1") from the competition grade
    module's optional `grade_details(submission, answers)`; {} when it has none or it fails."""
    module_name = comp.grader["grade_fn"].rsplit(":", 1)[0]
    try:
        fn = load_callable(comp.dir, f"{module_name}:grade_details", "grader.grade_details")
    except Exception:
        return {}
    try:
        return {str(k): float(v) for k, v in dict(fn(submission, answers)).items() if math.isfinite(float(v))}
    except Exception:  # the main score stands; a breakdown is extra
        return {}


def read_answers(path: Path) -> pd.DataFrame | list[Any] | Path:
    """The answers as the grader gets them: a CSV read as mlebench's `read_csv` does
    (`float_precision="round_trip"`), a JSONL as a list of objects, a Parquet as a frame;
    anything else (a folder) as its path, for the grader to read."""
    if path.suffix == ".csv":
        try:
            return pd.read_csv(path, float_precision="round_trip")
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
    if path.suffix == ".jsonl":
        with open(path) as f:
            return [json.loads(line) for line in f]
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return path


def _is_file(path: Path) -> bool:
    """mlebench's `path.is_file()`: whether a submission exists. Reading it is `read_submission`'s
    business, which refuses what it must (links, FIFOs, ...) with a reason."""
    try:
        return path.is_file()
    except OSError:
        return False


def _clip(text: str, n: int = MAX_REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# ---------------------------------------------------------------- mlebench's report form

#: the keys of mlebench's `CompetitionReport.to_dict()`, in its order
REPORT_KEYS = ("competition_id", "score", "gold_threshold", "silver_threshold", "bronze_threshold",
               "median_threshold", "any_medal", "gold_medal", "silver_medal", "bronze_medal", "above_median",
               "submission_exists", "valid_submission", "is_lower_better", "created_at", "submission_path")


def mlebench_report(r: GradeReport) -> dict[str, Any]:
    """`r` as mlebench's `CompetitionReport.to_dict()`: its keys in its order (floats, bools,
    `created_at` as a naive local ISO time, as mlebench's `datetime.now()`), then harness's
    `invalid_reason`. A competition without a leaderboard has None thresholds."""
    def f(x: Optional[float]) -> Optional[float]:
        return None if x is None else float(x)

    out: dict[str, Any] = {
        "competition_id": r.competition_id, "score": f(r.score),
        "gold_threshold": f(r.gold_threshold), "silver_threshold": f(r.silver_threshold),
        "bronze_threshold": f(r.bronze_threshold), "median_threshold": f(r.median_threshold),
        "any_medal": bool(r.any_medal), "gold_medal": bool(r.gold_medal), "silver_medal": bool(r.silver_medal),
        "bronze_medal": bool(r.bronze_medal), "above_median": bool(r.above_median),
        "submission_exists": bool(r.submission_exists), "valid_submission": bool(r.valid_submission),
        "is_lower_better": None if r.is_lower_better is None else bool(r.is_lower_better),
        "created_at": r.created_at.astimezone().replace(tzinfo=None).isoformat(),
        "submission_path": r.submission_path,
        "invalid_reason": r.invalid_reason,
    }
    return out


def aggregate_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """mlebench's aggregate `grading_report.json` (`mlebench grade`) over report dicts
    (`mlebench_report` form): its top-level counts in its order, then `competition_reports`."""
    def count(key: str) -> int:
        return int(sum(bool(r.get(key)) for r in reports))

    gold, silver, bronze = count("gold_medal"), count("silver_medal"), count("bronze_medal")
    return {
        "total_runs": len(reports),
        "total_runs_with_submissions": count("submission_exists"),
        "total_valid_submissions": count("valid_submission"),
        "total_medals": gold + silver + bronze,
        "total_gold_medals": gold,
        "total_silver_medals": silver,
        "total_bronze_medals": bronze,
        "total_above_median": count("above_median"),
        "competition_reports": reports,
    }
