"""scaling: features remapped, rank for rank, onto known distributions.

Six base features keep their order (and so their relation to the target) but take
new shapes: two Gaussian, two heavy-tailed (log-normal, sigma 1.2-1.6), one bounded
(uniform on 0-1 or 0-100) and one binary. Checks per feature: distribution,
skewness, a sound scaler; plus which model families need scaling at all.
medium: two more features: a Gaussian one with 2 % gross outliers on both sides
(robust scaling, not standard) and an identifier-like integer code (never scaled).
hard: medium, plus a left-skewed heavy tail (negative values: no plain log) and a
column in mixed units (about 30 % of rows recorded 1000 times larger)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, dumps,
                                     load_output, read_truth, write_manifest, write_truth)

NAME = "scaling"
KIND = "technique"
DESCRIPTION = "Tell Gaussian, heavy-tailed, bounded and binary features apart (planted) and scale each soundly."
OUTPUT = "scaling_analysis.json"
MODELS = {"logistic_regression": True, "knn": True, "svm": True, "random_forest": False, "gradient_boosting": False}
GOOD_SCALERS = {
    "gaussian": {"standard"},
    "heavy_tailed": {"log_then_standard", "quantile", "power"},
    "bounded": {"minmax", "none"},
    "binary": {"none"},
    "outliers": {"robust"},
    "identifier": {"none"},
    "mixed_units": {"unit_conversion"},
}
LEVELS = ("easy", "medium", "hard")
EXTRA = {"easy": [], "medium": ["outliers", "identifier"], "hard": ["outliers", "identifier", "heavy_tailed_left", "mixed_units"]}
NEW_NAMES = {"identifier": ["account_code", "branch_no", "sku", "terminal_no"], "mixed_units": ["length", "mass", "volume", "energy"]}
Model = Literal["logistic_regression", "knn", "svm", "random_forest", "gradient_boosting"]


class ScaledFeature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    distribution: Literal["gaussian", "heavy_tailed", "bounded", "binary", "outliers", "identifier", "mixed_units"]
    skewness: float
    scaler: Literal["none", "standard", "minmax", "robust", "log_then_standard", "quantile", "power", "unit_conversion"]


class ScalingAnalysis(BaseModel):
    """scaling_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    features: list[ScaledFeature]
    needs_scaling: dict[Model, bool] = Field(description="for each model family: does it need scaled inputs")
    rationale: str = ""


def applies_to(task_type: str, data: str = "tabular") -> bool:
    """Whether this task runs on a competition of this task type (binary | multiclass | regression)
    and data kind (tabular | image | timeseries): tables and per-series features; pixel intensities share one scale."""
    return data in ("tabular", "timeseries")


def prepare(ctx: PrepareContext) -> None:
    assert ctx.source is not None
    rng = ctx.rng
    src = ctx.source
    base = src.frame.reset_index(drop=True)
    usable = [f for f in src.features if base[f].nunique() > 20]
    kinds = ["gaussian", "gaussian", "heavy_tailed", "heavy_tailed", "bounded", "binary"]
    names = list(rng.choice(usable, min(len(kinds), len(usable)), replace=False))
    kinds = list(rng.permutation(kinds[: len(names)]))
    for extra in EXTRA[ctx.level]:
        pool = [f for f in usable if f not in names]
        if extra in NEW_NAMES:
            names.append(str(rng.choice([n for n in NEW_NAMES[extra] if n not in names])))
        elif pool:
            names.append(str(rng.choice(pool)))
        else:
            continue
        kinds.append(extra)
    out = pd.DataFrame(index=base.index)
    for name, kind in zip(names, kinds, strict=True):
        # rank -> quantile keeps the feature's order; ties broken at random so nothing collapses
        r = (base[name].rank(method="first").to_numpy() - 0.5) / len(base) if name in base else rng.permutation(len(base)) / len(base) + 0.5 / len(base)
        if kind == "gaussian":
            v = stats.norm.ppf(r) * rng.uniform(1, 20) + rng.uniform(-50, 100)
        elif kind == "heavy_tailed":
            v = np.exp(stats.norm.ppf(r) * rng.uniform(1.2, 1.6) + rng.uniform(2, 6))
        elif kind == "bounded":
            v = r * (100.0 if rng.random() < 0.5 else 1.0)
        elif kind == "outliers":
            v = stats.norm.ppf(r) * rng.uniform(1, 20) + rng.uniform(-50, 100)
            bad = rng.choice(len(v), max(4, int(0.02 * len(v))), replace=False)
            v[bad] += rng.choice([-1, 1], len(bad)) * rng.uniform(15, 40, len(bad)) * v.std()
        elif kind == "identifier":
            v = rng.choice(np.arange(1000, 99999), len(base), replace=True).astype(float)
        elif kind == "heavy_tailed_left":
            v = -np.exp(stats.norm.ppf(r) * rng.uniform(1.2, 1.6) + rng.uniform(2, 6))
        elif kind == "mixed_units":
            v = stats.norm.ppf(r) * rng.uniform(2, 5) + rng.uniform(20, 60)
            v[rng.random(len(v)) < 0.3] *= 1000.0
        else:
            v = (r > rng.uniform(0.3, 0.7)).astype(int)
        out[name] = np.round(v, 4) if kind not in ("binary", "identifier") else v.astype(int)
    kinds = ["heavy_tailed" if k == "heavy_tailed_left" else k for k in kinds]
    out[src.target] = base[src.target]
    out.insert(0, "id", np.arange(len(out)))
    out.to_csv(ctx.public / "train.csv", index=False)
    write_truth(ctx.private, {"features": {n: {"distribution": k, "skewness": float(out[n].skew())} for n, k in zip(names, kinds, strict=True)},
                              "needs_scaling": MODELS})
    notes = ("" if ctx.level == "easy" else
             "More shapes occur here: `outliers` (bell-shaped but with a few gross errors far out), `identifier` (an "
             "integer code or id, not a quantity)" + (", `mixed_units` (one quantity recorded in two units, one 1000 "
             "times the other); heavy tails may point left" if ctx.level == "hard" else "") + ".")
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=src.name, outputs=[OUTPUT],
                                        schema_file="scaling_analysis.schema.json", target=src.target, id_column="id",
                                        files={"train": "train.csv"}, level=ctx.level, notes=notes), ScalingAnalysis)


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    a = load_output(ScalingAnalysis, ctx.outputs, OUTPUT)
    reported = {f.name: f for f in a.features}
    c = Checks()
    for name, truth in t["features"].items():
        r = reported.get(name)
        d = truth["distribution"]
        if r is None:
            c.add(f"{name}: distribution", 0, 1, f"{name} ({d}) not reported")
            c.add(f"{name}: skewness", 0, 0.5, "not reported")
            c.add(f"{name}: scaler", 0, 1, "not reported")
            continue
        c.add(f"{name}: distribution", r.distribution == d, 1, "ok" if r.distribution == d else f"{name} is {d} (skewness {truth['skewness']:.2f}), reported {r.distribution}")
        tol = max(0.25, 0.2 * abs(truth["skewness"]))
        ok = bool(np.isfinite(r.skewness)) and abs(r.skewness - truth["skewness"]) <= tol
        c.add(f"{name}: skewness", ok, 0.5, f"true {truth['skewness']:.3f}, reported {r.skewness:.3f} (tolerance {tol:.2f})")
        good = GOOD_SCALERS[d]
        c.add(f"{name}: scaler", r.scaler in good, 1, "ok" if r.scaler in good else f"{r.scaler} does not suit a {d} feature; use one of {sorted(good)}")
    wrong = [m for m, need in t["needs_scaling"].items() if a.needs_scaling.get(m) is not need]  # type: ignore[call-overload]
    c.add("needs_scaling", 1 - len(wrong) / len(MODELS), 1, "ok" if not wrong else
          f"wrong or missing for {wrong} (distance-, margin- and gradient-based linear models need scaling; trees do not)")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    scaler = {"gaussian": "standard", "heavy_tailed": "power", "bounded": "minmax", "binary": "none", "outliers": "robust",
              "identifier": "none", "mixed_units": "unit_conversion"}
    feats = [{"name": n, **v, "scaler": scaler[v["distribution"]]} for n, v in t["features"].items()]
    return {OUTPUT: dumps({"features": feats, "needs_scaling": t["needs_scaling"]})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Standard-scales everything, calls everything Gaussian, thinks every model needs scaling."""
    t = read_truth(private)
    feats = [{"name": n, "distribution": "gaussian", "skewness": v["skewness"], "scaler": "standard"} for n, v in t["features"].items()]
    return {OUTPUT: dumps({"features": feats, "needs_scaling": {m: True for m in MODELS}})}
