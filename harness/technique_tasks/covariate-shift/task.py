"""covariate-shift: a test set drawn from a shifted distribution of the same features.

easy: two features' means moved by 1.2-2 standard deviations in test.csv.
medium: one mean shift and one scale shift (same mean, 2.5-3.5 times the spread).
hard: one mild mean shift (0.6-0.8 sd) and a pair of features whose relation flips
  in test (each marginal unchanged, rank for rank), visible only jointly.
Truth: the shifted features and their kind, the adversarial-validation AUC (a
random forest telling train from test rows, 5-fold, fixed seed).
Checks: each shifted feature found and typed, no false alarms, the AUC, a remedy."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, dumps, load_output, read_truth,
                                write_manifest, write_truth)

NAME = "covariate-shift"
KIND = "technique"
DESCRIPTION = "Find the features whose distribution differs between train and test (planted mean, scale and joint shifts)."
OUTPUT = "covariate-shift_analysis.json"
LEVELS = ("easy", "medium", "hard")
REMEDIES = {"importance_weighting", "drop_feature", "adversarial_validation_split"}


class ShiftedFeature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["mean", "scale", "joint"]


class ShiftAnalysis(BaseModel):
    """covariate-shift_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    shifted_features: list[ShiftedFeature]
    adversarial_auc: float = Field(ge=0, le=1, description="ROC AUC of a classifier telling test rows from train rows")
    remedy: Literal["none", "importance_weighting", "drop_feature", "adversarial_validation_split", "more_data"]
    rationale: str = ""


def applies_to(task_type: str, data: str = "tabular") -> bool:
    """Whether this task runs on a competition of this task type (binary | multiclass | regression)
    and data kind (tabular | image | timeseries): a shifted test set can happen on every kind of data."""
    return True


def adversarial_auc(train: pd.DataFrame, test: pd.DataFrame, seed: int = 0) -> float:
    """5-fold ROC AUC of a random forest separating test rows (1) from train rows (0)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    X = pd.concat([train, test], ignore_index=True)
    y = np.r_[np.zeros(len(train)), np.ones(len(test))]
    model = RandomForestClassifier(n_estimators=150, min_samples_leaf=3, n_jobs=1, random_state=seed)
    return float(cross_val_score(model, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed), scoring="roc_auc").mean())


def prepare(ctx: PrepareContext) -> None:
    assert ctx.source is not None
    rng = ctx.rng
    src = ctx.source
    feats = [f for f in src.features if pd.api.types.is_numeric_dtype(src.frame[f]) and src.frame[f].nunique() > 20]
    frame = src.frame[feats].dropna().reset_index(drop=True).astype(float)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    n_test = len(frame) // 3
    test, train = frame.iloc[:n_test].copy(), frame.iloc[n_test:].copy()
    corr = train.corr().abs().fillna(0).to_numpy()
    picked = list(rng.choice(feats, 3, replace=False))
    shifts: dict[str, str] = {}
    sd = train.std()
    if ctx.level == "easy":
        for f in picked[:2]:
            test[f] += rng.choice([-1, 1]) * rng.uniform(1.2, 2.0) * sd[f]
            shifts[f] = "mean"
    elif ctx.level == "medium":
        f, g = picked[:2]
        test[f] += rng.choice([-1, 1]) * rng.uniform(1.0, 1.6) * sd[f]
        test[g] = test[g].mean() + (test[g] - test[g].mean()) * rng.uniform(2.5, 3.5)
        shifts.update({f: "mean", g: "scale"})
    else:
        f = picked[0]
        test[f] += rng.choice([-1, 1]) * rng.uniform(0.6, 0.8) * sd[f]
        i, j = np.unravel_index(np.argmax(np.where(np.eye(len(feats)) > 0, 0, corr)), corr.shape)
        a, b = feats[int(i)], feats[int(j)]
        if f in (a, b):  # keep the joint pair apart from the mean shift
            others = [x for x in feats if x not in (a, b)]
            f = str(rng.choice(others))
            test[picked[0]] = frame.iloc[:n_test][picked[0]]
            test[f] += rng.choice([-1, 1]) * rng.uniform(0.6, 0.8) * sd[f]
        # b's relation to a reversed: b's values re-assigned rank for rank against a's reversed ranks
        vb = np.sort(test[b].to_numpy())
        order = np.argsort(-test[a].to_numpy() + rng.normal(0, 0.3 * test[a].std(), n_test))
        newb = np.empty(n_test)
        newb[order] = vb
        test[b] = newb
        shifts.update({f: "mean", a: "joint", b: "joint"})
    train, test = train.round(5), test.round(5)
    auc = adversarial_auc(train, test)
    train.insert(0, "id", np.arange(len(train)))
    test.insert(0, "id", np.arange(len(train), len(train) + len(test)))
    train.to_csv(ctx.public / "train.csv", index=False)
    test.to_csv(ctx.public / "test.csv", index=False)
    write_truth(ctx.private, {"level": ctx.level, "shifted": shifts, "adversarial_auc": auc, "features": feats})
    notes = ("A shift may also be `scale` (same centre, different spread)" if ctx.level == "medium" else
             "A shift may also be `joint`: the features look the same one at a time but relate differently to each other "
             "(name both of the pair)" if ctx.level == "hard" else "")
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=src.name, outputs=[OUTPUT],
                                        schema_file="covariate-shift_analysis.schema.json",
                                        id_column="id",
                                        files={"train": "train.csv", "test": "test.csv"}, level=ctx.level,
                                        notes=notes + ("." if notes else "")), ShiftAnalysis)


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    a = load_output(ShiftAnalysis, ctx.outputs, OUTPUT)
    got = {s.name: s.kind for s in a.shifted_features}
    c = Checks()
    for name, kind in t["shifted"].items():
        c.add(f"{name}: found", name in got, 1, "ok" if name in got else f"{name} is shifted ({kind}) in test.csv; not reported")
        c.add(f"{name}: kind", got.get(name) == kind, 0.5, "ok" if got.get(name) == kind else f"{name}'s shift is {kind}, reported {got.get(name)}")
    false = sorted(set(got) - set(t["shifted"]))
    c.add("no false alarms", 1 - 0.5 * len(false), 1, "ok" if not false else f"not shifted: {false}")
    ok = abs(a.adversarial_auc - t["adversarial_auc"]) <= 0.07
    c.add("adversarial_auc", ok, 1, f"true {t['adversarial_auc']:.3f}, reported {a.adversarial_auc:.3f} (tolerance 0.07)")
    c.add("remedy", a.remedy in REMEDIES, 1, "ok" if a.remedy in REMEDIES else
          f"{a.remedy} leaves the model trained on a distribution it will not see; use one of {sorted(REMEDIES)}")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    return {OUTPUT: dumps({"shifted_features": [{"name": k, "kind": v} for k, v in t["shifted"].items()],
                           "adversarial_auc": t["adversarial_auc"], "remedy": "importance_weighting"})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """One shift seen and called a mean shift, an innocent feature flagged, nothing done about it."""
    t = read_truth(private)
    first = next(iter(t["shifted"]))
    innocent = next(f for f in t["features"] if f not in t["shifted"])
    return {OUTPUT: dumps({"shifted_features": [{"name": first, "kind": "mean"}, {"name": innocent, "kind": "mean"}],
                           "adversarial_auc": 0.5, "remedy": "none"})}
