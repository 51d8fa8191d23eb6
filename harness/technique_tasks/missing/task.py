"""missing: values removed from three numeric columns of a table, one per mechanism.

MCAR: a uniform random subset of rows. MAR: rows drawn with weight exp(+-4 * rank of
another observed column). MNAR: rows drawn with weight exp(+-4 * rank of the column's
own value). Rates are exact (a fixed number of rows), drawn from the seed.
Checks per column: found, fraction, mechanism, driver column (MAR), imputation;
plus no false positives and the table totals."""

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


class MissingAnalysis(BaseModel):
    """missing_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    columns_with_missing: list[MissingColumn]
    total_missing_cells: int = Field(ge=0)
    rows_with_any_missing: int = Field(ge=0)
    rationale: str = ""


def applies_to(task_type: str) -> bool:
    return True


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
    for col, idx in rows.items():
        frame.loc[idx, col] = np.nan
    order = rng.permutation(n)
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(0, "id", np.arange(n))
    frame.to_csv(ctx.public / "train.csv", index=False)
    mech = {a: ("MAR", z), b: ("MNAR", None), c: ("MCAR", None)}
    write_truth(ctx.private, {
        "columns": {col: {"missing_fraction": float(frame[col].isna().mean()), "mechanism": m, "related_to": rel}
                    for col, (m, rel) in mech.items()},
        "total_missing_cells": int(frame.isna().sum().sum()),
        "rows_with_any_missing": int(frame.isna().any(axis=1).sum()),
    })
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=src.name, outputs=[OUTPUT],
                                        schema_file="missing_analysis.schema.json", target=src.target, id_column="id",
                                        files={"train": "train.csv"}), MissingAnalysis)


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
    extra = sorted(set(reported) - set(truth["columns"]))
    c.add("no false positives", not extra, 1, "ok" if not extra else f"reported columns without missing values: {extra}")
    c.add("total_missing_cells", a.total_missing_cells == truth["total_missing_cells"], 0.5,
          f"true {truth['total_missing_cells']}, reported {a.total_missing_cells}")
    c.add("rows_with_any_missing", a.rows_with_any_missing == truth["rows_with_any_missing"], 0.5,
          f"true {truth['rows_with_any_missing']}, reported {a.rows_with_any_missing}")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    imp = {"MCAR": "median", "MAR": "model_based", "MNAR": "indicator_plus_median"}
    cols = [{"name": k, **v, "imputation": imp[v["mechanism"]]} for k, v in t["columns"].items()]
    return {OUTPUT: dumps({"columns_with_missing": cols, "total_missing_cells": t["total_missing_cells"],
                           "rows_with_any_missing": t["rows_with_any_missing"]})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Counts right, everything called MCAR and mean-imputed."""
    t = read_truth(private)
    cols = [{"name": k, "missing_fraction": v["missing_fraction"], "mechanism": "MCAR", "imputation": "mean"}
            for k, v in t["columns"].items()]
    return {OUTPUT: dumps({"columns_with_missing": cols, "total_missing_cells": t["total_missing_cells"],
                           "rows_with_any_missing": t["rows_with_any_missing"]})}
