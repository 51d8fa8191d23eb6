"""Aggregation: mean ± SEM over seeds, mlebench's grading report, leaderboard tables."""

from __future__ import annotations

from typing import Any, Optional

import pandas as pd

from harness.stats import mean_sem as mean_sem  # re-exported: the CLI and the dashboard import it from here
from harness.spec import CompetitionReport, CompetitionSummary, GradingReport, RunState, RunSummary, TechniqueSummary
from harness.spec import TECHNIQUE_LEVELS, technique_level_of


def medal_name(row: pd.Series) -> str:
    for medal in ("gold", "silver", "bronze"):
        if bool(row.get(f"{medal}_medal")):
            return medal
    return ""


def _per_seed_rate(df: pd.DataFrame, column: str) -> tuple[Optional[float], Optional[float]]:
    if df.empty:
        return None, None
    return mean_sem(df.groupby("seed")[column].mean().tolist())


def summarize(state: RunState, attempts: pd.DataFrame, technique_grades: Optional[pd.DataFrame] = None) -> RunSummary:
    """summary.json for a run from its attempts table."""
    comp = attempts[attempts["task_kind"] == "competition"] if len(attempts) else attempts
    tech = attempts[attempts["task_kind"] == "technique"] if len(attempts) else attempts
    valid = comp.assign(valid_submission=comp["valid_submission"].fillna(False).astype(float)) if len(comp) else comp
    vr, vs = _per_seed_rate(valid, "valid_submission")
    mr, ms = _per_seed_rate(valid.assign(any_medal=valid["any_medal"].fillna(False).astype(float)) if len(valid) else valid, "any_medal")
    ar, as_ = _per_seed_rate(valid.assign(above_median=valid["above_median"].fillna(False).astype(float)) if len(valid) else valid, "above_median")
    competitions: list[CompetitionSummary] = []
    for cid, g in (comp.groupby("competition_id") if len(comp) else []):
        m, s = mean_sem(g["score"].dropna().tolist())
        competitions.append(CompetitionSummary(
            competition_id=str(cid), attempts=int(len(g)), valid=int(g["valid_submission"].fillna(False).sum()),
            score_mean=m, score_sem=s, any_medal=int(g["any_medal"].fillna(False).sum()),
            above_median=int(g["above_median"].fillna(False).sum()),
            median_threshold=_first(g, "median_threshold"), is_lower_better=_first(g, "is_lower_better"),
            scores=[None if pd.isna(x) else float(x) for x in g.sort_values("seed")["score"]],
            medals=[medal_name(r) for _, r in g.sort_values("seed").iterrows()],
        ))
    techniques: list[TechniqueSummary] = []
    by_level = tech.assign(_level=tech["attempt_id"].map(technique_level_of).fillna("")) if len(tech) else tech
    for (name, level), g in (by_level.groupby(["technique", "_level"]) if len(tech) else []):  # level: easy | medium | hard
        m, s = mean_sem(g["score"].fillna(0.0).tolist())
        techniques.append(TechniqueSummary(technique=str(name), level=str(level) or None, attempts=int(len(g)),
                                           score_mean=m, score_sem=s))
    techniques.sort(key=lambda t: (t.technique, TECHNIQUE_LEVELS.index(t.level) if t.level else -1))
    tmean, _ = mean_sem(tech["score"].fillna(0.0).tolist()) if len(tech) else (None, None)
    return RunSummary(
        run_id=state.run_id, agent_id=state.spec.agent, status=state.status, total=state.total,
        done=int(len(attempts[attempts["status"] != "cancelled"])) if len(attempts) else 0,
        by_status={k: int(v) for k, v in attempts["status"].value_counts().items()} if len(attempts) else {},
        valid_submission_rate=vr, valid_submission_sem=vs, any_medal_rate=mr, any_medal_sem=ms,
        above_median_rate=ar, above_median_sem=as_, technique_score=tmean, competitions=competitions, techniques=techniques,
        llm=_llm_summary(attempts),
    )


def _llm_summary(attempts: pd.DataFrame) -> Optional[dict[str, Any]]:
    from harness.llm.usage import llm_summary  # LLM agents (issue 13)

    return llm_summary(attempts)


def _first(g: pd.DataFrame, col: str) -> Any:
    s = g[col].dropna()
    if s.empty:
        return None
    v = s.iloc[0]
    return bool(v) if isinstance(v, (bool,)) or col.startswith("is_") else float(v)


THRESHOLDS = ("gold_threshold", "silver_threshold", "bronze_threshold", "median_threshold")
FLAGS = ("any_medal", "gold_medal", "silver_medal", "bronze_medal", "above_median", "submission_exists", "valid_submission")


def grading_report(attempts: pd.DataFrame) -> dict[str, Any]:
    """grading_report.json's content (JSON-able) for the competition attempts."""
    return build_grading_report(attempts).model_dump(mode="json")


def build_grading_report(attempts: pd.DataFrame) -> GradingReport:
    """mlebench's aggregate report (`mlebench grade` output) over the competition attempts."""
    comp = attempts[attempts["task_kind"] == "competition"] if len(attempts) else attempts
    reports = []
    for _, r in comp.iterrows():
        fields: dict[str, Any] = {k: (None if pd.isna(r[k]) else float(r[k])) for k in THRESHOLDS}
        fields.update({k: bool(r[k]) if not pd.isna(r[k]) else False for k in FLAGS})
        reports.append(CompetitionReport(
            competition_id=r["competition_id"], attempt_id=r["attempt_id"], seed=int(r["seed"]),
            score=None if pd.isna(r["score"]) else float(r["score"]), **fields,
            is_lower_better=None if pd.isna(r["is_lower_better"]) else bool(r["is_lower_better"]),
            invalid_reason=None if pd.isna(r["invalid_reason"]) else str(r["invalid_reason"]), created_at=str(r["ended_at"]),
            submission_path=f"{r['artifacts_dir']}/submission/submission.csv",
        ))

    def count(key: str) -> int:
        return sum(1 for x in reports if getattr(x, key))

    return GradingReport(
        total_runs=len(reports), total_runs_with_submissions=count("submission_exists"),
        total_valid_submissions=count("valid_submission"), total_medals=count("any_medal"),
        total_gold_medals=count("gold_medal"), total_silver_medals=count("silver_medal"),
        total_bronze_medals=count("bronze_medal"), total_above_median=count("above_median"),
        competition_reports=reports,
    )


def score_details_summary(details: pd.DataFrame) -> pd.DataFrame:
    """Each competition's sub-scores (rows of `score_details.parquet`: competition_id, seed,
    group, score) as mean ± SEM over the attempts: columns competition_id, group, attempts,
    mean, sem; groups in their first-seen order."""
    rows = []
    for (cid, group), g in details.groupby(["competition_id", "group"], sort=False):
        m, s = mean_sem(g["score"].tolist())
        rows.append({"competition_id": cid, "group": group, "attempts": int(len(g)), "mean": m, "sem": s})
    return pd.DataFrame(rows, columns=["competition_id", "group", "attempts", "mean", "sem"])
