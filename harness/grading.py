"""Grade one submission the way mlebench does: score, medal thresholds from the
competition's leaderboard, above-median, and a one-line reason when invalid.

`check_submission_format` is shared with the in-sandbox validator
(`python3 -m harness.validate`), which checks format only and never scores.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from harness.spec import CompetitionConfig, GradeReport


class InvalidSubmissionError(ValueError):
    """Raised by graders (and the format check) with a one-line reason."""


# ---------------------------------------------------------------- reading and format


def read_submission(source: Path | bytes | None, name: str = "submission.csv") -> pd.DataFrame:
    """Parse a submission CSV (a path, or its bytes) or raise InvalidSubmissionError saying why not."""
    if source is None or (isinstance(source, Path) and not source.is_file()):
        raise InvalidSubmissionError(f"no {name} was written to the submission directory")
    data = source.read_bytes() if isinstance(source, Path) else source
    if not data.strip():
        raise InvalidSubmissionError(f"{name} is empty")
    if data[:4] == b"PAR1":  # a Parquet submission (submission.parquet), as some Kaggle competitions take
        return read_parquet_submission(data, name)
    if b"\x00" in data[:4096]:
        raise InvalidSubmissionError(f"{name} is not a CSV file (it holds binary data)")
    try:
        df = pd.read_csv(io.BytesIO(data))
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise InvalidSubmissionError(f"{name} is not a readable CSV: {str(e).splitlines()[0]}") from None
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
    sub_ids = submission[id_col].astype(str)
    ref_ids = reference[id_col].astype(str)
    dup = sub_ids[sub_ids.duplicated()]
    if len(dup):
        raise InvalidSubmissionError(f"{len(dup)} duplicated {id_col} value(s), e.g. {dup.iloc[0]!r}")
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


# ---------------------------------------------------------------- medals


@dataclass(frozen=True)
class Thresholds:
    gold: float
    silver: float
    bronze: float
    median: float
    lower_is_better: bool


def medal_ranks(num_teams: int) -> tuple[int, int, int]:
    """(gold, silver, bronze) rank cut-offs by number of teams, as in mlebench/Kaggle."""
    n = num_teams
    if n < 100:
        return max(1, int(0.1 * n)), max(1, int(0.2 * n)), max(1, int(0.4 * n))
    if n < 250:
        return 10, int(0.2 * n), int(0.4 * n)
    if n < 1000:
        return 10 + int(0.002 * n), 50, 100
    return 10 + int(0.002 * n), int(0.05 * n), int(0.1 * n)


def leaderboard_thresholds(scores: pd.Series, lower_is_better: Optional[bool] = None) -> Thresholds:
    """Medal and median thresholds from a leaderboard's scores, best first."""
    s = pd.to_numeric(scores, errors="coerce").dropna().reset_index(drop=True)
    if s.empty:
        raise ValueError("leaderboard has no scores")
    if lower_is_better is None:
        lower_is_better = bool(s.iloc[0] < s.iloc[-1])
    ordered = s.sort_values(ascending=lower_is_better).reset_index(drop=True)
    g, sv, b = medal_ranks(len(ordered))
    at = lambda rank: float(ordered.iloc[min(rank, len(ordered)) - 1])  # noqa: E731
    return Thresholds(at(g), at(sv), at(b), float(ordered.median()), lower_is_better)


def read_leaderboard(comp: CompetitionConfig, lite: bool = False) -> Optional[pd.DataFrame]:
    """The competition's leaderboard; for a lite attempt `leaderboard.lite.csv` (calibrated on the
    lite data) when the competition has one, else `leaderboard.csv`."""
    lite_path = comp.dir / "leaderboard.lite.csv"
    path = lite_path if lite and lite_path.is_file() else comp.dir / "leaderboard.csv"
    return pd.read_csv(path) if path.is_file() else None


def competition_thresholds(comp: CompetitionConfig, lite: bool = False) -> Optional[Thresholds]:
    lb = read_leaderboard(comp, lite)
    if lb is None or "score" not in lb.columns or lb["score"].dropna().empty:
        return None
    lower = comp.lower_is_better
    return leaderboard_thresholds(lb["score"], lower if lower is not None else None)


# ---------------------------------------------------------------- grading


def grade_submission(
    comp: CompetitionConfig,
    submission: Path | bytes | None,
    answers_path: Path,
    sample_submission_path: Optional[Path] = None,
    lite: bool = False,
) -> GradeReport:
    """Grade one submission. Never raises for anything the agent wrote: a bad
    submission gives valid_submission=False and `invalid_reason`."""
    from harness.registry import load_callable

    t0 = time.perf_counter()
    exists = submission is not None and (not isinstance(submission, Path) or submission.is_file())
    base = dict(competition_id=comp.id, submission_exists=exists)
    thresholds = competition_thresholds(comp, lite)
    if thresholds is not None:
        base.update(
            gold_threshold=thresholds.gold,
            silver_threshold=thresholds.silver,
            bronze_threshold=thresholds.bronze,
            median_threshold=thresholds.median,
            is_lower_better=thresholds.lower_is_better,
        )
    elif comp.lower_is_better is not None:
        base["is_lower_better"] = comp.lower_is_better

    def invalid(reason: str) -> GradeReport:
        return GradeReport(**base, valid_submission=False, invalid_reason=reason, grade_seconds=time.perf_counter() - t0)

    try:
        sub = read_submission(submission)
        if sample_submission_path is not None and sample_submission_path.is_file():
            check_submission_format(sub, read_sample(sample_submission_path))
    except InvalidSubmissionError as e:
        return invalid(str(e))
    answers = _read_answers(answers_path)
    grade_fn = load_callable(comp.dir, comp.grader["grade_fn"], "grader.grade_fn")
    try:
        score = float(grade_fn(sub, answers))
    except Exception as e:  # a grader raising on a malformed submission is the agent's failure
        kind = "" if _is_invalid_submission(e) else f"grader raised {type(e).__name__}: "
        return invalid(kind + (str(e).splitlines()[0] if str(e) else type(e).__name__))
    if not math.isfinite(score):
        return invalid(f"the grader produced a non-finite score ({score})")
    report = dict(base, score=score, valid_submission=True, grade_seconds=time.perf_counter() - t0,
                  details=score_details(comp, sub, answers))
    if thresholds is not None:
        better_eq = (lambda a, b: a <= b) if thresholds.lower_is_better else (lambda a, b: a >= b)
        medals = comp.awards_medals
        gold = medals and better_eq(score, thresholds.gold)
        silver = medals and not gold and better_eq(score, thresholds.silver)
        bronze = medals and not (gold or silver) and better_eq(score, thresholds.bronze)
        above = score < thresholds.median if thresholds.lower_is_better else score > thresholds.median
        report.update(gold_medal=gold, silver_medal=silver, bronze_medal=bronze, any_medal=gold or silver or bronze, above_median=above)
    return GradeReport(**report)


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
    from harness.registry import load_callable

    module_name = comp.grader["grade_fn"].rsplit(":", 1)[0]
    try:
        fn = load_callable(comp.dir, f"{module_name}:grade_details", "grader.grade_details")
    except Exception:
        return {}
    try:
        return {str(k): float(v) for k, v in dict(fn(submission, answers)).items() if math.isfinite(float(v))}
    except Exception:  # the main score stands; a breakdown is extra
        return {}


def _read_answers(path: Path) -> pd.DataFrame | Path:
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return path  # a folder or another format: the grader knows what to do with it


def _is_invalid_submission(e: Exception) -> bool:
    # mlebench's own InvalidSubmissionError and ours share a name, not a class
    return type(e).__name__ == "InvalidSubmissionError"
