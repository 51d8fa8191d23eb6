"""leakage: a target-derived column, a post-outcome column and train/test duplicates.

target_derived: the target plus 2 % noise (classification: label shifted by a
constant, plus noise) under a neutral name. post_outcome: a quantity driven by the
outcome (correlation ~0.75) under a name that says it was recorded afterwards.
duplicates: 8-15 % of the test rows are copies of training rows (new ids).
medium: two more, harder to see: a target aggregate (the mean target of each
level of a segment column, fitted on all rows, under a neutral name) and a
post-outcome timestamp (a date, later for one outcome than the other).
hard: medium, plus an `id` that rises with the target (rows numbered after sorting)
and train/test duplicates with a little float jitter (near, not exact, copies).
Checks: each leak found and typed, no false alarms, the duplicated test ids, the
count, and mitigations that fix both kinds."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, dumps,
                                     load_output, read_truth, write_manifest, write_truth)

NAME = "leakage"
KIND = "technique"
DESCRIPTION = "Find target-derived and post-outcome columns and train/test duplicate rows (all planted)."
OUTPUT = "leakage_analysis.json"
DERIVED = ["risk_index", "composite_score", "adjusted_value", "signal_strength"]
LEVELS = ("easy", "medium", "hard")
AGGREGATES = ["segment_rate", "cohort_level", "group_score", "area_index"]
SEGMENTS = ["segment", "cohort", "region", "branch"]
STAMPS = ["closed_on", "resolved_on", "last_updated", "archived_on"]
POST = ["followup_visits_after_outcome", "days_in_treatment_after_diagnosis", "refund_amount_after_churn",
        "post_event_contact_count", "claims_paid_after_outcome"]


class LeakyColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    leak_type: Literal["target_derived", "post_outcome", "target_aggregate", "id_correlated"]
    evidence: str = ""


class LeakageAnalysis(BaseModel):
    """leakage_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    leaky_columns: list[LeakyColumn]
    duplicated_test_ids: list[int]
    n_train_test_duplicates: int = Field(ge=0)
    mitigations: list[Literal["drop_column", "deduplicate", "group_split_on_duplicates", "time_based_split", "none"]]
    rationale: str = ""


def applies_to(task_type: str, data: str = "tabular") -> bool:
    """Whether this task runs on a competition of this task type (binary | multiclass | regression)
    and data kind (tabular | image | timeseries): duplicates across train and test leak on every kind of data."""
    return True


def prepare(ctx: PrepareContext) -> None:
    assert ctx.source is not None
    rng = ctx.rng
    src = ctx.source
    order = rng.permutation(len(src.frame))
    base = src.frame.iloc[order].reset_index(drop=True)
    y = src.numeric_target()[order]
    ys = y.std() or 1.0
    derived, post = str(rng.choice(DERIVED)), str(rng.choice(POST))
    if src.is_classification:
        leak = y * 3.0 + rng.normal(0, 0.3, len(y)) + 10
    else:
        leak = y * rng.uniform(0.5, 2) + rng.normal(0, 0.02 * ys, len(y)) + rng.uniform(-5, 5)
    post_v = np.maximum(0, (y - y.mean()) / ys * 2.0 + rng.normal(0, 1.8, len(y)) + 4)
    cols = list(base.columns)
    base.insert(int(rng.integers(0, len(cols))), derived, np.round(leak, 4))
    base.insert(int(rng.integers(0, len(cols))), post, np.round(post_v).astype(int))
    leaks = {derived: "target_derived", post: "post_outcome"}
    if ctx.level != "easy":
        seg, agg, stamp = str(rng.choice(SEGMENTS)), str(rng.choice(AGGREGATES)), str(rng.choice(STAMPS))
        base.insert(int(rng.integers(0, len(base.columns))), seg, rng.choice([f"S{i:02d}" for i in range(1, 9)], len(base)))
        # target encoding fitted on all rows, test rows included: each segment's mean target
        base.insert(int(rng.integers(0, len(base.columns))), agg,
                    np.round(pd.Series(y).groupby(base[seg].to_numpy()).transform("mean").to_numpy() + rng.normal(0, 0.05 * ys, len(y)), 4))
        lag = np.where(y > np.median(y), rng.integers(20, 60, len(y)), rng.integers(0, 25, len(y)))
        start = pd.Timestamp("2022-03-01")
        base.insert(int(rng.integers(0, len(base.columns))), stamp, [(start + pd.Timedelta(days=int(d))).date().isoformat()
                                                                    for d in rng.integers(0, 30, len(y)) + lag])
        leaks.update({agg: "target_aggregate", stamp: "post_outcome"})
    n_test = int(round(0.25 * len(base)))
    test, train = base.iloc[:n_test].copy(), base.iloc[n_test:].copy()
    n_dup = int(round(rng.uniform(0.08, 0.15) * n_test))
    dups = train.iloc[rng.choice(len(train), n_dup, replace=False)].copy()
    if ctx.level == "hard":  # near copies: a little jitter on every float column
        num = [c for c in dups.columns if c != src.target and pd.api.types.is_float_dtype(dups[c])]
        dups[num] = np.round(dups[num].to_numpy() * (1 + rng.normal(0, 1e-4, (len(dups), len(num)))), 6)
    dup_rows = {tuple(map(str, r)) for r in dups.to_numpy().tolist()}
    test = pd.concat([test.iloc[: n_test - n_dup], dups]).iloc[rng.permutation(n_test)].reset_index(drop=True)
    if ctx.level == "hard":  # rows numbered after sorting by the outcome: the id predicts the target
        yt = pd.Series(src.numeric_target()[order][n_test:]) + rng.normal(0, 0.3 * ys, len(train))
        train = train.iloc[np.argsort(yt.to_numpy(), kind="stable")]
        leaks["id"] = "id_correlated"
    train = train.reset_index(drop=True)
    train.insert(0, "id", np.arange(len(train)))
    test.insert(0, "id", np.arange(len(train), len(train) + n_test))
    features = [c for c in train.columns if c not in ("id", src.target)]
    if ctx.level == "hard":
        dup_ids = [int(i) for i, row in zip(test["id"], test.drop(columns=["id"]).to_numpy().tolist(), strict=True)
                   if tuple(map(str, row)) in dup_rows]
    else:
        keys = set(map(tuple, train[features].round(6).to_numpy().tolist()))
        dup_ids = [int(i) for i, row in zip(test["id"], test[features].round(6).to_numpy().tolist(), strict=True) if tuple(row) in keys]
    train.to_csv(ctx.public / "train.csv", index=False)
    test.drop(columns=[src.target]).to_csv(ctx.public / "test.csv", index=False)
    write_truth(ctx.private, {"level": ctx.level, "leaky_columns": leaks,
                              "duplicated_test_ids": sorted(dup_ids), "features": features})
    notes = ("" if ctx.level == "easy" else
             "Two more kinds may occur: `target_aggregate` (a statistic of the target per group, such as a target "
             "encoding fitted on all rows) and post-outcome columns that are dates." +
             (" The `id` column itself may leak (`id_correlated`); duplicated test rows may differ from their training "
              "twin by a little float jitter (relative 1e-3 or less) and still count." if ctx.level == "hard" else ""))
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=src.name, outputs=[OUTPUT],
                                        schema_file="leakage_analysis.schema.json", target=src.target, id_column="id",
                                        files={"train": "train.csv", "test": "test.csv"}, level=ctx.level, notes=notes),
                   LeakageAnalysis)


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    a = load_output(LeakageAnalysis, ctx.outputs, OUTPUT)
    reported = {col.name: col for col in a.leaky_columns}
    c = Checks()
    for name, kind in t["leaky_columns"].items():
        r = reported.get(name)
        c.add(f"{name}: found", r is not None, 2, "ok" if r else f"{name} is a {kind} leak; not reported")
        c.add(f"{name}: leak_type", r is not None and r.leak_type == kind, 0.5,
              "ok" if r is not None and r.leak_type == kind else f"{name} is {kind}, reported {r.leak_type if r else 'nothing'}")
    false = sorted(set(reported) - set(t["leaky_columns"]))
    c.add("no false alarms", 1 - 0.5 * len(false), 1, "ok" if not false else f"not leaks: {false} (dropping them loses real signal)")
    truth_ids, got = set(t["duplicated_test_ids"]), set(a.duplicated_test_ids)
    tp = len(truth_ids & got)
    f1 = 2 * tp / (len(truth_ids) + len(got)) if truth_ids or got else 1.0
    c.add("duplicated_test_ids", f1, 2, f"F1 {f1:.2f}: {tp} of {len(truth_ids)} duplicated test rows found, {len(got) - tp} wrongly flagged")
    c.add("n_train_test_duplicates", abs(a.n_train_test_duplicates - len(truth_ids)) <= 1, 0.5,
          f"true {len(truth_ids)}, reported {a.n_train_test_duplicates}")
    need = {"drop_column", "deduplicate"}
    have = need & set(a.mitigations) | ({"deduplicate"} if "group_split_on_duplicates" in a.mitigations else set())
    c.add("mitigations", len(have) / 2, 1, "ok" if have >= need else f"missing: {sorted(need - have)} (leaky columns must go; duplicated rows must not straddle the split)")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    return {OUTPUT: dumps({"leaky_columns": [{"name": k, "leak_type": v} for k, v in t["leaky_columns"].items()],
                           "duplicated_test_ids": t["duplicated_test_ids"], "n_train_test_duplicates": len(t["duplicated_test_ids"]),
                           "mitigations": ["drop_column", "deduplicate"]})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Catches the blatant target copy only, flags an innocent feature, misses the duplicates."""
    t = read_truth(private)
    derived = next(k for k, v in t["leaky_columns"].items() if v == "target_derived")
    if t.get("level", "easy") != "easy":  # the numeric leaks and exact duplicates only, as single-column screens see them
        post = next(k for k, v in t["leaky_columns"].items() if v == "post_outcome" and k in t["features"])
        return {OUTPUT: dumps({"leaky_columns": [{"name": derived, "leak_type": "target_derived"},
                                                 {"name": post, "leak_type": "post_outcome"}],
                               "duplicated_test_ids": t["duplicated_test_ids"][: len(t["duplicated_test_ids"]) // 2],
                               "n_train_test_duplicates": 0, "mitigations": ["drop_column", "deduplicate"]})}
    innocent = next(f for f in t["features"] if f not in t["leaky_columns"])
    return {OUTPUT: dumps({"leaky_columns": [{"name": derived, "leak_type": "target_derived"},
                                             {"name": innocent, "leak_type": "post_outcome"}],
                           "duplicated_test_ids": [], "n_train_test_duplicates": 0, "mitigations": ["drop_column"]})}
