"""imbalance: a classification table subsampled to a chosen minority fraction.

Truth: exact class counts, the minority class and fraction, the severity band.
Checks: counts, minority class, fraction, majority-baseline accuracy, severity,
a metric that is not fooled by imbalance, a real remedy when one is needed,
stratified folds."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, close, dumps,
                                     load_output, read_truth, write_manifest, write_truth)

NAME = "imbalance"
KIND = "technique"
DESCRIPTION = "Detect class imbalance (planted minority fraction) and choose metric, remedies and folds."
OUTPUT = "imbalance_analysis.json"
FRACTIONS = [0.03, 0.06, 0.1, 0.2, 0.3]
REMEDIES = {"class_weight", "random_oversampling", "smote", "random_undersampling", "threshold_tuning", "focal_loss"}
IMBALANCE_METRICS = {"pr_auc", "f1", "balanced_accuracy", "mcc", "roc_auc"}


class ImbalanceAnalysis(BaseModel):
    """imbalance_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    target_column: str
    class_counts: dict[str, int]
    minority_class: str
    minority_fraction: float = Field(ge=0, le=1)
    majority_baseline_accuracy: float = Field(ge=0, le=1)
    severity: Literal["balanced", "moderate", "severe"]
    primary_metric: Literal["accuracy", "balanced_accuracy", "f1", "roc_auc", "pr_auc", "log_loss", "mcc"]
    strategies: list[Literal["none", "class_weight", "random_oversampling", "smote", "random_undersampling",
                             "threshold_tuning", "focal_loss"]]
    cv_strategy: Literal["kfold", "stratified_kfold", "group_kfold", "time_series_split", "holdout"]
    rationale: str = ""


def applies_to(task_type: str) -> bool:
    return task_type in ("binary", "multiclass")


def severity(fraction: float) -> str:
    return "balanced" if fraction >= 0.40 else "moderate" if fraction >= 0.15 else "severe"


def prepare(ctx: PrepareContext) -> None:
    assert ctx.source is not None
    rng = ctx.rng
    frame, target = ctx.source.frame, ctx.source.target
    labels = frame[target].astype(str) if not pd.api.types.is_integer_dtype(frame[target]) else frame[target]
    counts = labels.value_counts()
    minority = counts.index[-1]
    fraction = float(rng.choice(FRACTIONS))
    is_min = (labels == minority).to_numpy()
    n_other, n_min = int((~is_min).sum()), int(is_min.sum())
    want_min = int(round(fraction / (1 - fraction) * n_other))
    if want_min <= n_min:
        keep = np.concatenate([np.flatnonzero(~is_min), rng.choice(np.flatnonzero(is_min), max(want_min, 5), replace=False)])
    else:  # not enough minority rows: thin the others instead
        want_other = int(round(n_min * (1 - fraction) / fraction))
        keep = np.concatenate([rng.choice(np.flatnonzero(~is_min), want_other, replace=False), np.flatnonzero(is_min)])
    out = frame.iloc[rng.permutation(keep)].reset_index(drop=True)
    out.insert(0, "id", np.arange(len(out)))
    out.to_csv(ctx.public / "train.csv", index=False)
    final = out[target].astype(str).value_counts()
    frac = float(final.min() / final.sum())
    write_truth(ctx.private, {
        "target_column": target, "class_counts": {str(k): int(v) for k, v in final.items()},
        "minority_class": str(final.idxmin()), "minority_fraction": frac,
        "majority_baseline_accuracy": float(final.max() / final.sum()), "severity": severity(frac),
    })
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=ctx.source.name, outputs=[OUTPUT],
                                        schema_file="imbalance_analysis.schema.json", target=target, id_column="id",
                                        files={"train": "train.csv"}), ImbalanceAnalysis)


def grade(ctx: GradeContext) -> Grade:
    truth = read_truth(ctx.private)
    a = load_output(ImbalanceAnalysis, ctx.outputs, OUTPUT)
    c = Checks()
    c.add("target_column", a.target_column == truth["target_column"], 1,
          "ok" if a.target_column == truth["target_column"] else f"target is {truth['target_column']!r}, not {a.target_column!r}")
    counts = {str(k): int(v) for k, v in a.class_counts.items()}
    c.add("class_counts", counts == truth["class_counts"], 2,
          "ok" if counts == truth["class_counts"] else f"class counts are {truth['class_counts']}, reported {counts}")
    c.add("minority_class", a.minority_class == truth["minority_class"], 1,
          "ok" if a.minority_class == truth["minority_class"] else f"minority class is {truth['minority_class']!r}, not {a.minority_class!r}")
    c.add("minority_fraction", close(a.minority_fraction, truth["minority_fraction"], 0.01), 1,
          f"true {truth['minority_fraction']:.4f}, reported {a.minority_fraction:.4f} (tolerance 0.01)")
    c.add("majority_baseline_accuracy", close(a.majority_baseline_accuracy, truth["majority_baseline_accuracy"], 0.01), 1,
          f"true {truth['majority_baseline_accuracy']:.4f}, reported {a.majority_baseline_accuracy:.4f} (tolerance 0.01)")
    sev = truth["severity"]
    c.add("severity", a.severity == sev, 1, "ok" if a.severity == sev else f"severity is {sev} (minority fraction {truth['minority_fraction']:.3f}), not {a.severity}")
    metric_ok = a.primary_metric in IMBALANCE_METRICS or sev == "balanced"
    c.add("primary_metric", metric_ok, 1, "ok" if metric_ok else
          f"{a.primary_metric} rewards predicting the majority class at a {sev} imbalance; use pr_auc, f1, balanced_accuracy, mcc or roc_auc")
    remedies = set(a.strategies) & REMEDIES
    if sev == "balanced":
        ok = "none" in a.strategies or bool(remedies)
        c.add("strategies", ok, 1, "ok" if ok else "name at least one strategy (or none)")
    else:
        ok = bool(remedies) and "none" not in a.strategies
        c.add("strategies", ok, 1, "ok" if ok else f"a {sev} imbalance needs a remedy ({', '.join(sorted(REMEDIES))}), not {a.strategies}")
    c.add("cv_strategy", a.cv_strategy == "stratified_kfold", 1, "ok" if a.cv_strategy == "stratified_kfold" else
          f"{a.cv_strategy} can leave folds with few or no minority rows; use stratified_kfold")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    return {OUTPUT: dumps({**t, "primary_metric": "pr_auc" if t["severity"] != "balanced" else "roc_auc",
                           "strategies": ["class_weight", "threshold_tuning"] if t["severity"] != "balanced" else ["none"],
                           "cv_strategy": "stratified_kfold", "rationale": "from the class counts"})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Counts right, judgement wrong: accuracy, no remedy, plain K-fold, wrong severity band."""
    t = read_truth(private)
    wrong_sev = {"severe": "balanced", "moderate": "balanced", "balanced": "severe"}[t["severity"]]
    return {OUTPUT: dumps({**t, "severity": wrong_sev, "minority_fraction": 0.5, "primary_metric": "accuracy",
                           "strategies": ["none"], "cv_strategy": "kfold"})}
