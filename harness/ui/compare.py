"""Comparing runs: per task, the paired difference of scores over seeds with a bootstrap
confidence interval, and each run's valid-submission and medal rates.

The first run is the base; every other run is compared with it. Attempts pair up by
(task, seed): a competition id, or a technique task id such as `imbalance.penguin-species`.
A pair needs a score on both sides (an invalid submission has none). The bootstrap
resamples the paired differences with a fixed seed, so the CLI and the page print the same
numbers for the same runs.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel

from harness.report import mean_sem

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


class RunRates(BaseModel):
    """One run's rates over its competition attempts: mean over seeds ± SEM (fractions 0..1)."""

    run_id: str
    agent_id: str
    attempts: int
    valid_rate: Optional[float] = None
    valid_sem: Optional[float] = None
    medal_rate: Optional[float] = None
    medal_sem: Optional[float] = None
    technique_score: Optional[float] = None
    technique_sem: Optional[float] = None


class TaskDelta(BaseModel):
    """One task's comparison of `other` with `base`: delta = other − base, mean over paired seeds,
    with a bootstrap interval; rates are fractions of that run's attempts of the task."""

    task: str
    kind: str  # competition | technique
    is_lower_better: Optional[bool] = None
    seeds: list[int]
    base_mean: Optional[float] = None
    other_mean: Optional[float] = None
    delta: Optional[float] = None
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    base_valid_rate: Optional[float] = None
    other_valid_rate: Optional[float] = None
    base_medal_rate: Optional[float] = None
    other_medal_rate: Optional[float] = None
    verdict: str = ""  # "other better", "base better", "no clear difference", "not paired"


class PairComparison(BaseModel):
    base: str
    other: str
    competitions: list[TaskDelta]
    techniques: list[TaskDelta]


class Comparison(BaseModel):
    runs: list[RunRates]
    pairs: list[PairComparison]
    confidence: float = CONFIDENCE
    bootstrap_samples: int = BOOTSTRAP_SAMPLES


def bootstrap_ci(diffs: Sequence[float], samples: int = BOOTSTRAP_SAMPLES, confidence: float = CONFIDENCE,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `diffs` (resampled with replacement)."""
    d = np.asarray(list(diffs), dtype=float)
    if d.size == 0:
        raise ValueError("no differences to bootstrap")
    if d.size == 1:
        return float(d[0]), float(d[0])
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(samples, d.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def task_key(row: pd.Series) -> str:
    """The task an attempt belongs to: its competition id, or the technique task id of its attempt id."""
    if row["task_kind"] == "competition":
        return str(row["competition_id"])
    return str(row["attempt_id"]).split("__", 1)[0]


def run_rates(run_id: str, agent_id: str, attempts: pd.DataFrame) -> RunRates:
    """Valid and medal rates (mean over seeds ± SEM) of a run's competition attempts, and its technique score."""
    comp = attempts[attempts["task_kind"] == "competition"] if len(attempts) else attempts
    tech = attempts[attempts["task_kind"] == "technique"] if len(attempts) else attempts
    out = RunRates(run_id=run_id, agent_id=agent_id, attempts=int(len(attempts)))
    if len(comp):
        per_seed = comp.assign(v=comp["valid_submission"].fillna(False).astype(float),
                               m=comp["any_medal"].fillna(False).astype(float)).groupby("seed")
        out.valid_rate, out.valid_sem = mean_sem(per_seed["v"].mean().tolist())
        out.medal_rate, out.medal_sem = mean_sem(per_seed["m"].mean().tolist())
    if len(tech):
        out.technique_score, out.technique_sem = mean_sem(tech.groupby("seed")["score"].apply(
            lambda s: s.fillna(0.0).mean()).tolist())
    return out


def _by_task(attempts: pd.DataFrame, kind: str) -> dict[str, pd.DataFrame]:
    rows = attempts[attempts["task_kind"] == kind] if len(attempts) else attempts
    if rows.empty:
        return {}
    keys = rows.apply(task_key, axis=1)
    return {str(k): g for k, g in rows.groupby(keys)}


def _rate(g: Optional[pd.DataFrame], col: str) -> Optional[float]:
    if g is None or g.empty:
        return None
    return float(g[col].fillna(False).astype(float).mean())


def _scores(g: Optional[pd.DataFrame], kind: str) -> dict[int, float]:
    if g is None:
        return {}
    out = {}
    for _, r in g.iterrows():
        score = r["score"]
        if kind == "technique" and (score is None or pd.isna(score)):
            score = 0.0  # a technique task without a grade scored nothing
        if score is not None and not pd.isna(score) and math.isfinite(float(score)):
            out[int(r["seed"])] = float(score)
    return out


def compare_tasks(base: pd.DataFrame, other: pd.DataFrame, kind: str) -> list[TaskDelta]:
    """Per task present in either run: paired deltas (other − base) over seeds both runs scored."""
    a, b = _by_task(base, kind), _by_task(other, kind)
    out = []
    for task in sorted(set(a) | set(b)):
        ga, gb = a.get(task), b.get(task)
        sa, sb = _scores(ga, kind), _scores(gb, kind)
        seeds = sorted(set(sa) & set(sb))
        lower = None
        for g in (ga, gb):
            if g is not None and g["is_lower_better"].notna().any():
                lower = bool(g["is_lower_better"].dropna().iloc[0])
                break
        d = TaskDelta(task=task, kind=kind, is_lower_better=lower if kind == "competition" else False, seeds=seeds,
                      base_valid_rate=_rate(ga, "valid_submission"), other_valid_rate=_rate(gb, "valid_submission"),
                      base_medal_rate=_rate(ga, "any_medal") if kind == "competition" else None,
                      other_medal_rate=_rate(gb, "any_medal") if kind == "competition" else None,
                      verdict="not paired")
        if seeds:
            diffs = [sb[s] - sa[s] for s in seeds]
            d.base_mean = float(np.mean([sa[s] for s in seeds]))
            d.other_mean = float(np.mean([sb[s] for s in seeds]))
            d.delta = float(np.mean(diffs))
            d.ci_low, d.ci_high = bootstrap_ci(diffs)
            sign = -1.0 if d.is_lower_better else 1.0
            lo, hi = sorted((sign * d.ci_low, sign * d.ci_high))
            d.verdict = "other better" if lo > 0 else "base better" if hi < 0 else "no clear difference"
        out.append(d)
    return out


def compare_runs(runs: Sequence[tuple[str, str, pd.DataFrame]]) -> Comparison:
    """Compare runs given as (run_id, agent_id, attempts); the first is the base. Needs at least two."""
    if len(runs) < 2:
        raise ValueError("compare needs at least two runs")
    base_id, _, base = runs[0]
    pairs = [PairComparison(base=base_id, other=rid, competitions=compare_tasks(base, df, "competition"),
                            techniques=compare_tasks(base, df, "technique")) for rid, _, df in runs[1:]]
    return Comparison(runs=[run_rates(rid, agent, df) for rid, agent, df in runs], pairs=pairs)


def fmt(x: Optional[float], digits: int = 4) -> str:
    """A number as the CLI and the page print it: 4 significant digits, `—` for none."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}g}"


def fmt_delta(d: TaskDelta) -> str:
    """`+0.0123 [−0.001, +0.02]`: the delta and its interval, as both the CLI and the page show it."""
    if d.delta is None:
        return "—"
    return f"{d.delta:+.4g} [{d.ci_low:+.4g}, {d.ci_high:+.4g}]"


def fmt_rate(m: Optional[float], s: Optional[float] = None) -> str:
    if m is None:
        return "—"
    return f"{m:.2f}" if s is None else f"{m:.2f} ± {s:.2f}"
