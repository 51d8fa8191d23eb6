"""missing: values removed from three numeric columns of a table, one per mechanism.

MCAR: a uniform random subset of rows. MAR: rows drawn with weight exp(+-4 * rank of
another observed column). MNAR: rows drawn with weight exp(+-4 * rank of the column's
own value). Rates are exact (a fixed number of rows), drawn from the seed.
medium: the MCAR column's missing values are disguised as a sentinel (-1, 999 or
-999, outside the column's range) instead of empty cells.
hard: medium, plus the MNAR column disguised by another sentinel, and a test.csv
in which one more column (complete in train.csv) is missing in 25-40 % of rows.
Checks per column: found, fraction, mechanism, driver column (MAR), imputation,
(medium/hard) the sentinel; plus no false positives, the table totals (sentinels
count as missing) and (hard) the column missing only in test."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, close, dumps,
                                     load_output, read_truth, write_manifest, write_truth)

NAME = "missing"
KIND = "technique"
DESCRIPTION = "Find missing values and their mechanism (planted MCAR / MAR / MNAR at known rates) and choose imputations."
OUTPUT = "missing_analysis.json"
IMPUTATIONS = {
    "MCAR": {"mean", "median", "model_based", "indicator_plus_median"},
    "MAR": {"model_based", "indicator_plus_median"},
    "MNAR": {"indicator_plus_median"},
}


class MissingColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    missing_fraction: float = Field(ge=0, le=1)
    mechanism: Literal["MCAR", "MAR", "MNAR"]
    related_to: Optional[str] = Field(None, description="MAR: the observed column the missingness depends on")
    imputation: Literal["drop_rows", "mean", "median", "mode", "constant", "model_based", "indicator_plus_median"]
    encoded_as: Optional[str] = Field(None, description="how missing values appear in the file: empty, or the sentinel (e.g. -1)")


class MissingAnalysis(BaseModel):
    """missing_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    columns_with_missing: list[MissingColumn]
    total_missing_cells: int = Field(ge=0)
    rows_with_any_missing: int = Field(ge=0)
    columns_missing_only_in_test: list[str] = Field(
        default_factory=list, description="columns complete in train.csv but with missing values in test.csv (if any)")
    rationale: str = ""


LEVELS = ("easy", "medium", "hard")


def _sentinel(values: pd.Series, avoid: set[float]) -> float:
    """A round number outside the column's range: what a legacy system writes for 'unknown'."""
    lo, hi = float(values.min()), float(values.max())
    for s in (-1.0, 999.0, -999.0, 9999.0, -9999.0, 99999.0):
        if (s < lo or s > hi) and s not in avoid:
            return s
    return float(10 ** np.ceil(np.log10(max(abs(lo), abs(hi)) + 1)) * 10 - 1)


def applies_to(task_type: str, data: str = "tabular") -> bool:
    """Whether this task runs on a competition of this task type (binary | multiclass | regression)
    and data kind (tabular | image | timeseries): sensor dropouts in series summaries; not on images."""
    return data in ("tabular", "timeseries")


def _pick_columns(frame: pd.DataFrame, features: list[str], rng: np.random.Generator) -> tuple[str, str, str, str]:
    """(driver Z, MAR column A, MNAR column B, MCAR column C): A not a near-copy of Z, B not a near-copy of anything."""
    corr = frame[features].corr().abs().fillna(0.0)
    usable = [f for f in features if frame[f].nunique() > 10]
    best = None
    for _ in range(300):
        z, a, b, c = rng.choice(usable, 4, replace=False)
        others = corr.loc[b].drop(b)
        cost = max(0.0, corr.loc[z, a] - 0.3) + max(0.0, float(others.max()) - 0.85)
        if best is None or cost < best[0]:
            best = (cost, (str(z), str(a), str(b), str(c)))
        if cost == 0:
            break
    assert best is not None
    return best[1]


def _draw(values: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k distinct rows, the higher (or lower) `values` the likelier."""
    rank = pd.Series(values).rank(pct=True).to_numpy()
    sign = rng.choice([-1.0, 1.0])
    w = np.exp(4.0 * sign * rank)
    return rng.choice(len(values), k, replace=False, p=w / w.sum())


def prepare(ctx: PrepareContext) -> None:
    assert ctx.source is not None
    rng = ctx.rng
    src = ctx.source
    features = [f for f in src.features if pd.api.types.is_numeric_dtype(src.frame[f])]
    frame = src.frame.dropna(subset=features).reset_index(drop=True)  # the only missing values are the planted ones
    while sum(frame[f].nunique() > 10 for f in features) < 4:  # too few continuous columns: add measured-like ones
        name = f"measure_{len(features)}"
        z = (frame[features] - frame[features].mean()) / frame[features].std().replace(0, 1)
        frame.insert(len(features), name, np.round(z.to_numpy() @ rng.normal(0, 1, len(features)) + rng.normal(0, 1, len(frame)), 4))
        features.append(name)
    z, a, b, c = _pick_columns(frame, features, rng)
    n = len(frame)
    rates = {col: float(np.round(rng.uniform(0.08, 0.3), 2)) for col in (a, b, c)}
    rows = {
        a: _draw(frame[z].to_numpy(), int(round(rates[a] * n)), rng),
        b: _draw(frame[b].to_numpy(), int(round(rates[b] * n)), rng),
        c: rng.choice(n, int(round(rates[c] * n)), replace=False),
    }
    disguised = {c: None, b: None} if ctx.level == "hard" else {c: None} if ctx.level == "medium" else {}
    complete = frame.copy()
    for col, idx in rows.items():
        frame.loc[idx, col] = np.nan
    order = rng.permutation(n)
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(0, "id", np.arange(n))
    missing = frame.isna()
    written = frame.copy()
    for col in disguised:  # the sentinel replaces the empty cell
        disguised[col] = _sentinel(frame[col].dropna(), {v for v in disguised.values() if v is not None})
        written[col] = written[col].fillna(disguised[col])
    files = {"train": "train.csv"}
    test_only: list[str] = []
    if ctx.level == "hard":  # a column complete in train but missing in test: imputation must be fitted anyway
        d = str(rng.choice([f for f in features if f not in (a, b, c, z)] or [z]))
        n_test = max(50, n // 4)
        test = complete.iloc[rng.choice(n, n_test, replace=n < n_test)][features].reset_index(drop=True)
        test.loc[rng.choice(n_test, int(round(rng.uniform(0.25, 0.4) * n_test)), replace=False), d] = np.nan
        test.insert(0, "id", np.arange(n, n + n_test))
        test.to_csv(ctx.public / "test.csv", index=False)
        files["test"], test_only = "test.csv", [d]
    written.to_csv(ctx.public / "train.csv", index=False)
    mech = {a: ("MAR", z), b: ("MNAR", None), c: ("MCAR", None)}
    notes = ("Some systems that produced this file write a placeholder number instead of leaving a value empty; "
             "a placeholder is a missing value (give it in `encoded_as`, e.g. `-1`; leave `encoded_as` empty for "
             "empty cells) and counts in the fractions and totals." if disguised else "")
    if test_only:
        notes += " `/home/data/test.csv` holds the rows to predict: name in `columns_missing_only_in_test` every column that is complete in train.csv but has missing values there."
    write_truth(ctx.private, {
        "level": ctx.level,
        "columns": {col: {"missing_fraction": float(missing[col].mean()), "mechanism": m, "related_to": rel,
                          "encoded_as": disguised.get(col)} for col, (m, rel) in mech.items()},
        "total_missing_cells": int(missing.sum().sum()),
        "rows_with_any_missing": int(missing.any(axis=1).sum()),
        "columns_missing_only_in_test": test_only,
    })
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=src.name, outputs=[OUTPUT],
                                        schema_file="missing_analysis.schema.json", target=src.target, id_column="id",
                                        files=files, level=ctx.level, notes=notes), MissingAnalysis)


def _as_number(v: Optional[str]) -> Optional[float]:
    try:
        return float(str(v).strip()) if v is not None and str(v).strip() else None
    except ValueError:
        return None


def grade(ctx: GradeContext) -> Grade:
    truth = read_truth(ctx.private)
    a = load_output(MissingAnalysis, ctx.outputs, OUTPUT)
    reported = {col.name: col for col in a.columns_with_missing}
    c = Checks()
    for name, t in truth["columns"].items():
        r = reported.get(name)
        mech = t["mechanism"]
        c.add(f"{name}: found", r is not None, 0.5, "ok" if r else f"{name} has {t['missing_fraction']:.1%} missing values; not reported")
        if r is None:
            c.add(f"{name}: fraction", 0, 0.5, "not reported")
            c.add(f"{name}: mechanism", 0, 1, f"not reported (it is {mech})")
            if mech == "MAR":
                c.add(f"{name}: related_to", 0, 1, f"not reported (driven by {t['related_to']})")
            c.add(f"{name}: imputation", 0, 0.5, "not reported")
            continue
        c.add(f"{name}: fraction", close(r.missing_fraction, t["missing_fraction"], 0.02), 0.5,
              f"true {t['missing_fraction']:.4f}, reported {r.missing_fraction:.4f} (tolerance 0.02)")
        if r.mechanism == mech:
            c.add(f"{name}: mechanism", 1, 1, "ok")
        elif {r.mechanism, mech} == {"MAR", "MNAR"}:
            c.add(f"{name}: mechanism", 0.5, 1, f"it is {mech}, reported {r.mechanism} (half credit: both see that the missingness is informative)")
        else:
            c.add(f"{name}: mechanism", 0, 1, f"it is {mech}, reported {r.mechanism}")
        if mech == "MAR":
            ok = r.related_to == t["related_to"]
            c.add(f"{name}: related_to", ok, 1, "ok" if ok else f"missingness depends on {t['related_to']}, reported {r.related_to}")
        ok = r.imputation in IMPUTATIONS[mech]
        c.add(f"{name}: imputation", ok, 0.5, "ok" if ok else f"{r.imputation} is a poor fit for {mech}; use one of {sorted(IMPUTATIONS[mech])}")
        if t.get("encoded_as") is not None:
            ok = _as_number(r.encoded_as) == t["encoded_as"]
            c.add(f"{name}: encoded_as", ok, 0.5, "ok" if ok else f"missing values are written as {t['encoded_as']:g}, reported {r.encoded_as!r}")
    extra = sorted(set(reported) - set(truth["columns"]))
    c.add("no false positives", not extra, 1, "ok" if not extra else f"reported columns without missing values: {extra}")
    c.add("total_missing_cells", a.total_missing_cells == truth["total_missing_cells"], 0.5,
          f"true {truth['total_missing_cells']}, reported {a.total_missing_cells}")
    c.add("rows_with_any_missing", a.rows_with_any_missing == truth["rows_with_any_missing"], 0.5,
          f"true {truth['rows_with_any_missing']}, reported {a.rows_with_any_missing}")
    if truth.get("level", "easy") == "hard":
        want, got = set(truth["columns_missing_only_in_test"]), set(a.columns_missing_only_in_test)
        c.add("columns_missing_only_in_test", want == got, 1.5, "ok" if want == got else
              f"{sorted(want)} is complete in train.csv but missing in test.csv (the imputer must still be fitted on it), reported {sorted(got)}")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    imp = {"MCAR": "median", "MAR": "model_based", "MNAR": "indicator_plus_median"}
    cols = [{"name": k, **v, "imputation": imp[v["mechanism"]],
             "encoded_as": None if v["encoded_as"] is None else f"{v['encoded_as']:g}"} for k, v in t["columns"].items()]
    return {OUTPUT: dumps({"columns_with_missing": cols, "total_missing_cells": t["total_missing_cells"],
                           "rows_with_any_missing": t["rows_with_any_missing"],
                           "columns_missing_only_in_test": t.get("columns_missing_only_in_test", [])})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Counts right, everything called MCAR and mean-imputed (medium/hard: only the empty cells found)."""
    t = read_truth(private)
    if t.get("level", "easy") != "easy":
        cols = [{"name": k, "missing_fraction": v["missing_fraction"], "mechanism": v["mechanism"], "related_to": v["related_to"],
                 "imputation": "model_based" if v["mechanism"] == "MAR" else "median"}
                for k, v in t["columns"].items() if v["encoded_as"] is None]
        return {OUTPUT: dumps({"columns_with_missing": cols, "total_missing_cells": sum(1 for _ in cols),
                               "rows_with_any_missing": 0})}
    cols = [{"name": k, "missing_fraction": v["missing_fraction"], "mechanism": "MCAR", "imputation": "mean"}
            for k, v in t["columns"].items()]
    return {OUTPUT: dumps({"columns_with_missing": cols, "total_missing_cells": t["total_missing_cells"],
                           "rows_with_any_missing": t["rows_with_any_missing"]})}
