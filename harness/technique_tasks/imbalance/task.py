"""imbalance: a classification table subsampled to a chosen minority fraction.

easy: the source's classes, the smallest subsampled to a fraction drawn from the seed.
medium: four classes cut from a latent score (features plus target) at drawn fractions,
  so several classes are minorities (below 15 %), each to be named.
hard: medium, plus hand-typed labels (about 15 % of rows spelled `Fault`, `FAULT`,
  ` fault `: the same class, counted once) and a costly class named in the
  instructions, whose cost-optimal probability threshold 1 / (1 + cost ratio) is asked.
Truth: exact class counts, the minority class and fraction, the severity band.
Checks: counts, minority class, fraction, majority-baseline accuracy, severity,
a metric that is not fooled by imbalance, a real remedy when one is needed,
stratified folds; medium/hard: every minority class; hard: the costly class's threshold."""

from __future__ import annotations

from typing import Literal, Optional

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
IMBALANCE_METRICS = {"pr_auc", "f1", "macro_f1", "balanced_accuracy", "mcc", "roc_auc"}
LEVELS = ("easy", "medium", "hard")
CLASS_NAMES = [["ok", "warning", "fault", "failure"], ["healthy", "mild", "moderate", "critical"],
               ["standard", "silver", "gold", "fraud"], ["none", "low", "medium", "high"]]
COST_RATIOS = [5, 9, 19, 24]


class ImbalanceAnalysis(BaseModel):
    """imbalance_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    target_column: str
    class_counts: dict[str, int]
    minority_class: str
    minority_fraction: float = Field(ge=0, le=1)
    majority_baseline_accuracy: float = Field(ge=0, le=1)
    severity: Literal["balanced", "moderate", "severe"]
    primary_metric: Literal["accuracy", "balanced_accuracy", "f1", "macro_f1", "roc_auc", "pr_auc", "log_loss", "mcc"]
    strategies: list[Literal["none", "class_weight", "random_oversampling", "smote", "random_undersampling",
                             "threshold_tuning", "focal_loss"]]
    cv_strategy: Literal["kfold", "stratified_kfold", "group_kfold", "time_series_split", "holdout"]
    minority_classes: Optional[list[str]] = Field(None, description="every class below 15 % of rows (medium, hard)")
    costly_class_threshold: Optional[float] = Field(
        None, ge=0, le=1, description="hard: the probability of the costly class above which to predict it")
    rationale: str = ""


def applies_to(task_type: str, data: str = "tabular") -> bool:
    """Whether this task runs on a competition of this task type (binary | multiclass | regression)
    and data kind (tabular | image | timeseries): class labels exist on tables, images and series alike."""
    return task_type in ("binary", "multiclass")


def severity(fraction: float) -> str:
    return "balanced" if fraction >= 0.40 else "moderate" if fraction >= 0.15 else "severe"


def _relabel(ctx: PrepareContext, rng: np.random.Generator) -> tuple[pd.DataFrame, list[str]]:
    """medium/hard: four classes cut from a latent score at drawn fractions (largest first)."""
    assert ctx.source is not None
    src = ctx.source
    feats = [f for f in src.features if pd.api.types.is_numeric_dtype(src.frame[f])]
    X = src.frame[feats].astype(float)
    z = ((X - X.mean()) / X.std().replace(0, 1)).fillna(0).to_numpy()
    y = src.numeric_target()
    latent = z @ rng.normal(0, 1, len(feats)) / np.sqrt(len(feats)) + (y - y.mean()) / (y.std() or 1.0)
    minors = [rng.uniform(0.16, 0.24), rng.uniform(0.05, 0.12), rng.uniform(0.02, 0.045)]
    cuts = np.cumsum([1 - sum(minors), *minors])[:-1]
    names = CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))]
    idx = np.searchsorted(cuts, pd.Series(latent).rank(pct=True, method="first").to_numpy())
    out = src.frame[feats].copy()
    out[src.target] = np.array(names)[idx]
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True), names


def _misspell(labels: pd.Series, rng: np.random.Generator) -> pd.Series:
    """hard: about 15 % of the labels typed differently (case, surrounding spaces); still the same class."""
    forms = [str.upper, str.title, lambda v: f" {v}", lambda v: f"{v} "]
    out = labels.astype(str).copy()
    hit = np.flatnonzero(rng.random(len(out)) < 0.15)
    out.iloc[hit] = [forms[int(k)](v) for k, v in zip(rng.integers(0, len(forms), len(hit)), out.iloc[hit], strict=True)]
    return out


def prepare(ctx: PrepareContext) -> None:
    assert ctx.source is not None
    rng = ctx.rng
    if ctx.level != "easy":
        _prepare_multiclass(ctx, rng)
        return
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
        "level": "easy", "target_column": target, "class_counts": {str(k): int(v) for k, v in final.items()},
        "minority_class": str(final.idxmin()), "minority_fraction": frac,
        "majority_baseline_accuracy": float(final.max() / final.sum()), "severity": severity(frac),
    })
    _manifest(ctx, target, "")


def _manifest(ctx: PrepareContext, target: str, notes: str) -> None:
    assert ctx.source is not None
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=ctx.source.name, outputs=[OUTPUT],
                                        schema_file="imbalance_analysis.schema.json", target=target, id_column="id",
                                        files={"train": "train.csv"}, level=ctx.level, notes=notes), ImbalanceAnalysis)


def _prepare_multiclass(ctx: PrepareContext, rng: np.random.Generator) -> None:
    assert ctx.source is not None
    target = ctx.source.target
    out, names = _relabel(ctx, rng)
    clean = out[target].astype(str)
    notes = ("This table has several classes. Also list in `minority_classes` every class below 15 % of the rows "
             "(severity follows the smallest class).")
    truth_extra: dict[str, object] = {}
    if ctx.level == "hard":
        out[target] = _misspell(clean, rng)
        costly = names[int(rng.integers(1, len(names)))]
        ratio = int(rng.choice(COST_RATIOS))
        truth_extra = {"costly_class": costly, "cost_ratio": ratio, "costly_class_threshold": 1.0 / (1 + ratio)}
        notes += (f"\n\nThe labels were typed by hand in several systems: values that differ only in letter case or "
                  f"surrounding spaces are the same class; report every class once, in lower case without spaces. "
                  f"Missing a `{costly}` row costs {ratio} times as much as a false alarm on one: give in "
                  f"`costly_class_threshold` the calibrated probability of `{costly}` above which a row should be "
                  f"flagged as `{costly}` (one-vs-rest) to minimise the expected cost.")
    out.insert(0, "id", np.arange(len(out)))
    out.to_csv(ctx.public / "train.csv", index=False)
    counts = clean.value_counts()
    frac = float(counts.min() / counts.sum())
    write_truth(ctx.private, {
        "level": ctx.level, "target_column": target, "class_counts": {str(k): int(v) for k, v in counts.items()},
        "minority_class": str(counts.idxmin()), "minority_fraction": frac,
        "majority_baseline_accuracy": float(counts.max() / counts.sum()), "severity": severity(frac),
        "minority_classes": sorted(str(k) for k, v in counts.items() if v / counts.sum() < 0.15), **truth_extra,
    })
    _manifest(ctx, target, notes)


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
    if "minority_classes" in truth:
        want, got = set(truth["minority_classes"]), {str(v).strip().lower() for v in a.minority_classes or []}
        jac = len(want & got) / len(want | got) if want | got else 1.0
        c.add("minority_classes", jac, 2, "ok" if want == got else f"the classes below 15 % are {sorted(want)}, reported {sorted(got)}")
    if "costly_class_threshold" in truth:
        thr, got_t = truth["costly_class_threshold"], a.costly_class_threshold
        ok = got_t is not None and abs(got_t - thr) <= 0.2 * thr
        c.add("costly_class_threshold", ok, 2, "ok" if ok else
              f"at a cost ratio of {truth['cost_ratio']} the expected cost is lowest flagging {truth['costly_class']!r} "
              f"above probability 1/(1+{truth['cost_ratio']}) = {thr:.3f}, reported {got_t}")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = {k: v for k, v in read_truth(private).items() if k not in ("level", "costly_class", "cost_ratio")}
    return {OUTPUT: dumps({**t, "primary_metric": "pr_auc" if t["severity"] != "balanced" else "roc_auc",
                           "strategies": ["class_weight", "threshold_tuning"] if t["severity"] != "balanced" else ["none"],
                           "cv_strategy": "stratified_kfold", "rationale": "from the class counts"})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Counts right, judgement wrong: accuracy, no remedy, plain K-fold, wrong severity band."""
    t = {k: v for k, v in read_truth(private).items() if k not in ("level", "costly_class", "cost_ratio")}
    if "costly_class_threshold" in t:  # hard: the hand-typed spellings counted as classes of their own, 0.5 as threshold
        return {OUTPUT: dumps({**t, "minority_classes": t["minority_classes"][:1], "costly_class_threshold": 0.5,
                               "primary_metric": "macro_f1", "strategies": ["class_weight"], "cv_strategy": "stratified_kfold",
                               "class_counts": {**t["class_counts"], t["minority_class"].upper(): 3},
                               "minority_class": t["minority_class"].upper(), "minority_fraction": 0.004})}
    wrong_sev = {"severe": "balanced", "moderate": "balanced", "balanced": "severe"}[t["severity"]]
    return {OUTPUT: dumps({**t, "severity": wrong_sev, "minority_fraction": 0.5, "primary_metric": "accuracy",
                           "strategies": ["none"], "cv_strategy": "kfold"})}
