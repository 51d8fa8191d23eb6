"""outliers: rows corrupted in known ways inside a clean table.

easy: 2-4 % of rows get one feature set far outside its range (global, 15-30 robust
  spreads from the median), after the source's own extremes are clipped to its 1st-99th percentiles.
medium: global outliers plus data-entry errors (one value multiplied by 100 or 1000,
  a misplaced decimal point), each kind about half.
hard: a third global; two thirds multivariate: a pair of strongly related features
  (a new `<x>_check` column tracking `x`) broken, each value inside its own range.
Truth: the corrupted row ids and their kind. Checks: F1 of the flagged rows, the
kind of each found row, the count, and a handling for each kind."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, dumps, load_output, read_truth,
                                write_manifest, write_truth)

NAME = "outliers"
KIND = "technique"
DESCRIPTION = "Find corrupted rows (planted global, data-entry and multivariate outliers) and say how to handle each kind."
OUTPUT = "outliers_analysis.json"
LEVELS = ("easy", "medium", "hard")
Kind = Literal["global", "data_entry", "multivariate"]
HANDLING = {"global": {"clip", "robust_model", "remove"}, "data_entry": {"correct_value", "remove"},
            "multivariate": {"remove", "robust_model", "clip"}}


class OutlierRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    kind: Kind
    column: str = ""


class OutlierAnalysis(BaseModel):
    """outliers_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    outlier_rows: list[OutlierRow]
    n_outliers: int = Field(ge=0)
    handling: dict[Kind, Literal["keep", "clip", "remove", "correct_value", "robust_model"]] = Field(
        description="for each kind of outlier found: how to treat it")
    rationale: str = ""


def applies_to(task_type: str, data: str = "tabular") -> bool:
    """Whether this task runs on a competition of this task type (binary | multiclass | regression)
    and data kind (tabular | image | timeseries): tables and series features."""
    return data in ("tabular", "timeseries")


def prepare(ctx: PrepareContext) -> None:
    assert ctx.source is not None
    rng = ctx.rng
    src = ctx.source
    feats = [f for f in src.features if pd.api.types.is_numeric_dtype(src.frame[f]) and src.frame[f].nunique() > 20]
    out = src.frame[feats + [src.target]].dropna().reset_index(drop=True)
    for f in feats:  # a clean table first: the source's own extremes pulled in to its 1st-99th percentiles
        out[f] = out[f].clip(*out[f].quantile([0.01, 0.99]))
    n = len(out)
    kinds: dict[int, str] = {}
    cols: dict[int, str] = {}
    if ctx.level == "hard":  # a strongly related companion column, to break jointly
        x = str(rng.choice(feats))
        comp = f"{x}_check"
        out.insert(out.columns.get_loc(x) + 1, comp, np.round(out[x] * 1.0 + rng.normal(0, 0.03 * out[x].std(), n), 5))
        feats = feats + [comp]
    k = max(6, int(round(rng.uniform(0.02, 0.04) * n)))
    rows = rng.choice(n, k, replace=False)
    plan = {"easy": ["global"] * k, "medium": ["global", "data_entry"] * k,
            "hard": ["global", "multivariate", "multivariate"] * k}[ctx.level][:k]
    for r, kind in zip(rows, rng.permutation(plan), strict=True):
        r = int(r)
        if kind == "multivariate":
            lo, hi = out[x].quantile([0.1, 0.9])
            v = float(out.at[r, x])
            out.at[r, comp] = round(float(hi if v < (lo + hi) / 2 else lo), 5)  # in range alone, far from its twin
            cols[r] = comp
        else:
            f = str(rng.choice([c for c in feats if not c.endswith("_check")]))
            s = out[f]
            if kind == "global":
                spread = float(s.quantile(0.75) - s.quantile(0.25)) or float(s.std()) or 1.0
                out.at[r, f] = round(float(s.median() + rng.choice([-1, 1]) * rng.uniform(15, 30) * spread), 5)
            else:
                base = float(s.iloc[r]) if abs(float(s.iloc[r])) > 1e-6 else float(s.median()) or 1.0
                out.at[r, f] = round(base * float(rng.choice([100, 1000])), 5)
            cols[r] = f
        kinds[r] = str(kind)
    out.insert(0, "id", np.arange(n))
    out.to_csv(ctx.public / "train.csv", index=False)
    write_truth(ctx.private, {"level": ctx.level, "rows": {str(r): kd for r, kd in kinds.items()},
                              "columns": {str(r): c for r, c in cols.items()}})
    notes = {"easy": "", "medium": "Kinds here: `global` and `data_entry`.",
             "hard": "Kinds here: `global` and `multivariate` (a row whose values are each plausible but not together)."}[ctx.level]
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=src.name, outputs=[OUTPUT],
                                        schema_file="outliers_analysis.schema.json", target=src.target, id_column="id",
                                        files={"train": "train.csv"}, level=ctx.level, notes=notes), OutlierAnalysis)


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    a = load_output(OutlierAnalysis, ctx.outputs, OUTPUT)
    truth = {int(k): v for k, v in t["rows"].items()}
    got = {r.id: r.kind for r in a.outlier_rows}
    tp = set(truth) & set(got)
    f1 = 2 * len(tp) / (len(truth) + len(got)) if truth or got else 1.0
    c = Checks()
    c.add("outlier_rows", f1, 4, f"F1 {f1:.2f}: {len(tp)} of {len(truth)} corrupted rows found, {len(got) - len(tp)} clean rows flagged")
    right = sum(got[i] == truth[i] for i in tp)
    c.add("kinds", right / len(truth), 1, f"{right} of {len(truth)} corrupted rows found with the right kind")
    c.add("n_outliers", abs(a.n_outliers - len(truth)) <= max(1, 0.1 * len(truth)), 0.5, f"true {len(truth)}, reported {a.n_outliers}")
    kinds = sorted(set(truth.values()))
    ok = [kd for kd in kinds if a.handling.get(kd) in HANDLING[kd]]  # type: ignore[call-overload]
    c.add("handling", len(ok) / len(kinds), 1, "ok" if len(ok) == len(kinds) else
          f"handling for {sorted(set(kinds) - set(ok))} missing or unsound (" +
          "; ".join(f"{kd}: {sorted(HANDLING[kd])}" for kd in kinds) + ")")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    handle = {"global": "clip", "data_entry": "correct_value", "multivariate": "remove"}
    rows = [{"id": int(k), "kind": v, "column": t["columns"][k]} for k, v in t["rows"].items()]
    return {OUTPUT: dumps({"outlier_rows": rows, "n_outliers": len(rows),
                           "handling": {kd: handle[kd] for kd in set(t["rows"].values())}})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Half the corrupted rows found, as many clean rows flagged, every kind called global and kept."""
    t = read_truth(private)
    ids = sorted(int(k) for k in t["rows"])
    clean = [i for i in range(max(ids) + 2) if str(i) not in t["rows"]][: len(ids) // 2]
    rows = [{"id": i, "kind": "global"} for i in ids[: len(ids) // 2] + clean]
    return {OUTPUT: dumps({"outlier_rows": rows, "n_outliers": len(rows), "handling": {"global": "keep"}})}
