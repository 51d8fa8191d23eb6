"""calibration: a model's scores whose relation to the true probability is known.

True log-odds L ~ N(mu, 1.5), outcome y ~ Bernoulli(sigmoid(L)); the model reports
sigmoid(g(L)). easy: g = k L, k 2-3 (overconfident). medium: g = k L + c, k 0.35-0.5,
and rare positives (underconfident). hard: g piecewise, slope 2.5 above 0 and 0.4
below (a shape one sigmoid cannot undo; Platt scaling leaves it miscalibrated).
valid.csv has scores and outcomes; test.csv only scores (outcomes stay private).
Truth: ECE (10 equal-width bins) on valid, the kind of miscalibration, the ECE of
isotonic regression fitted on valid and applied to test. Checks: the ECE, the kind,
the fix, the agent's calibrated test probabilities (their ECE, measured here,
and their ranking, which must survive)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, dumps, load_output, read_truth,
                                write_manifest, write_truth)

NAME = "calibration"
KIND = "technique"
DESCRIPTION = "Measure a model's calibration error (planted over-, under- and non-sigmoid miscalibration) and fix it."
OUTPUT = "calibration_analysis.json"
LEVELS = ("easy", "medium", "hard")
KINDS = {"easy": "overconfident", "medium": "underconfident", "hard": "nonlinear"}
FIXES = {"overconfident": {"platt", "temperature", "isotonic", "beta"}, "underconfident": {"platt", "temperature", "isotonic", "beta"},
         "nonlinear": {"isotonic"}}


class CalibrationAnalysis(BaseModel):
    """calibration_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    ece_before: float = Field(ge=0, le=1, description="expected calibration error of the raw scores on valid.csv (10 equal-width bins)")
    miscalibration: Literal["well_calibrated", "overconfident", "underconfident", "nonlinear"]
    fix: Literal["none", "platt", "temperature", "isotonic", "beta"]
    test_probabilities: list[float] = Field(description="calibrated probabilities for test.csv, in its row order")
    rationale: str = ""


def applies_to(task_type: str, data: str = "tabular") -> bool:
    """Whether this task runs on a competition of this task type (binary | multiclass | regression)
    and data kind (tabular | image | timeseries): brings its own scores: generated data only."""
    return False


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |mean outcome - mean probability| per equal-width bin, weighted by bin size."""
    idx = np.clip((np.asarray(p) * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(float(np.mean(y[m])) - float(np.mean(p[m])))
    return total / len(p)


def isotonic(valid: pd.DataFrame, scores: np.ndarray) -> np.ndarray:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(valid["score"], valid["y"])
    return np.asarray(iso.predict(scores))


def prepare(ctx: PrepareContext) -> None:
    rng = ctx.rng
    n = 1500 if ctx.lite else 4000
    mu = -1.8 if ctx.level == "medium" else rng.uniform(-0.5, 0.5)
    L = rng.normal(mu, 1.5, 2 * n)
    y = (rng.random(2 * n) < 1 / (1 + np.exp(-L))).astype(int)
    if ctx.level == "easy":
        g = rng.uniform(2, 3) * L
    elif ctx.level == "medium":
        g = rng.uniform(0.35, 0.5) * L + rng.uniform(-0.5, 0.0)
    else:
        g = np.where(L > 0, 2.5 * L, 0.4 * L)
    s = np.round(1 / (1 + np.exp(-g)), 6)
    valid = pd.DataFrame({"id": np.arange(n), "score": s[:n], "y": y[:n]})
    test = pd.DataFrame({"id": np.arange(n, 2 * n), "score": s[n:]})
    valid.to_csv(ctx.public / "valid.csv", index=False)
    test.to_csv(ctx.public / "test.csv", index=False)
    from sklearn.metrics import roc_auc_score

    write_truth(ctx.private, {"level": ctx.level, "test_y": y[n:].tolist(), "ece_before": ece(s[:n], y[:n]),
                              "miscalibration": KINDS[ctx.level], "ece_isotonic_test": ece(isotonic(valid, s[n:]), y[n:]),
                              "auc_raw_test": float(roc_auc_score(y[n:], s[n:]))})
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source="synthetic", outputs=[OUTPUT],
                                        schema_file="calibration_analysis.schema.json", target="y", id_column="id",
                                        files={"valid": "valid.csv", "test": "test.csv"}, level=ctx.level), CalibrationAnalysis)


def grade(ctx: GradeContext) -> Grade:
    from sklearn.metrics import roc_auc_score

    t = read_truth(ctx.private)
    a = load_output(CalibrationAnalysis, ctx.outputs, OUTPUT)
    c = Checks()
    c.add("ece_before", abs(a.ece_before - t["ece_before"]) <= 0.015, 1,
          f"true {t['ece_before']:.4f}, reported {a.ece_before:.4f} (tolerance 0.015)")
    kind = t["miscalibration"]
    c.add("miscalibration", a.miscalibration == kind, 1, "ok" if a.miscalibration == kind else f"the scores are {kind}, reported {a.miscalibration}")
    c.add("fix", a.fix in FIXES[kind], 1, "ok" if a.fix in FIXES[kind] else f"{a.fix} does not undo {kind} scores; use one of {sorted(FIXES[kind])}")
    y = np.asarray(t["test_y"])
    p = np.asarray(a.test_probabilities, dtype=float)
    if len(p) != len(y) or not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        c.add("test_ece", 0, 2, f"test_probabilities must hold {len(y)} probabilities in [0, 1] in test.csv's order; got {len(p)}")
        c.add("test_ranking", 0, 1, "no usable test_probabilities")
        return c.grade()
    got, best = ece(p, y), t["ece_isotonic_test"]
    limit = max(best + 0.015, 0.025)
    c.add("test_ece", got <= limit, 2, f"ECE of the calibrated test probabilities {got:.4f}; isotonic regression reaches "
          f"{best:.4f} (limit {limit:.4f})")
    auc = float(roc_auc_score(y, p))
    c.add("test_ranking", auc >= t["auc_raw_test"] - 0.01, 1, f"test ROC AUC {auc:.4f}, the raw scores {t['auc_raw_test']:.4f} "
          "(calibration must keep the ranking)")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    valid, test = pd.read_csv(public / "valid.csv"), pd.read_csv(public / "test.csv")
    return {OUTPUT: dumps({"ece_before": t["ece_before"], "miscalibration": t["miscalibration"], "fix": "isotonic",
                           "test_probabilities": isotonic(valid, test["score"].to_numpy()).round(6).tolist()})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Trusts the scores: calls them calibrated and passes them through."""
    test = pd.read_csv(public / "test.csv")
    return {OUTPUT: dumps({"ece_before": 0.0, "miscalibration": "well_calibrated", "fix": "none",
                           "test_probabilities": test["score"].tolist()})}
