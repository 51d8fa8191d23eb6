"""cv: rows made dependent, so plain shuffled K-fold overstates the score.

grouped: base rows repeated 2-6 times with small noise under an entity id
(patient_id, customer_id, ...); rows shuffled. temporal: rows ordered along a
smooth latent (neighbours alike) and given consecutive dates, with a drift in the
target. Which one, and the column name, come from the seed.
Checks: structure, key column, scheme, group count (or enough time splits),
and that plain K-fold is recognised as optimistic."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, dumps,
                                     load_output, read_truth, write_manifest, write_truth)

NAME = "cv"
KIND = "technique"
DESCRIPTION = "Recognise grouped or time-ordered rows (planted) and choose a cross-validation scheme that is not fooled."
OUTPUT = "cv_analysis.json"
GROUP_COLUMNS = ["patient_id", "customer_id", "household_id", "device_id", "store_id"]
TIME_COLUMNS = ["date", "event_date", "day", "recorded_on"]
GOOD = {"grouped": {"group_kfold", "stratified_group_kfold", "leave_one_group_out"}, "temporal": {"time_series_split"}}


class CVAnalysis(BaseModel):
    """cv_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    structure: Literal["iid", "grouped", "temporal"]
    key_column: Optional[str] = None
    recommended_cv: Literal["kfold", "stratified_kfold", "group_kfold", "stratified_group_kfold", "leave_one_group_out",
                            "time_series_split", "holdout"]
    n_splits: int = Field(ge=2, le=100)
    n_groups: Optional[int] = Field(None, ge=0)
    kfold_is_optimistic: bool
    plain_kfold_score: Optional[float] = None
    recommended_cv_score: Optional[float] = None
    metric: str = ""
    rationale: str = ""


def applies_to(task_type: str) -> bool:
    return True


def prepare(ctx: PrepareContext) -> None:
    assert ctx.source is not None
    rng = ctx.rng
    src = ctx.source
    base = src.frame.reset_index(drop=True)
    feats = src.features
    structure = "grouped" if (ctx.seed >> 3) % 2 else "temporal"
    if structure == "grouped":
        key = str(rng.choice(GROUP_COLUMNS))
        n_groups = min(len(base), 60 if ctx.lite else 150)
        picks = rng.choice(len(base), n_groups, replace=False)
        sizes = rng.integers(2, 7, n_groups)
        rows = np.repeat(picks, sizes)
        out = base.iloc[rows].reset_index(drop=True)
        noise = rng.normal(0, 0.05, (len(out), len(feats))) * base[feats].std().to_numpy()
        out[feats] = np.round(out[feats].to_numpy(dtype=float) + noise, 5)
        ids = rng.choice(np.arange(10000, 99999), n_groups, replace=False)
        out.insert(0, key, np.repeat(ids, sizes))
        out = out.iloc[rng.permutation(len(out))].reset_index(drop=True)
        truth = {"structure": "grouped", "key_column": key, "n_groups": int(n_groups)}
    else:
        key = str(rng.choice(TIME_COLUMNS))
        z = (base[feats] - base[feats].mean()) / base[feats].std().replace(0, 1)
        latent = z.to_numpy() @ rng.normal(0, 1, len(feats))
        order = np.argsort(latent + rng.normal(0, 0.3 * latent.std(), len(latent)))
        out = base.iloc[order].reset_index(drop=True)
        y = out[src.target]
        if not src.is_classification:  # drift: the level of the target moves over time
            out[src.target] = np.round(y + np.linspace(0, 0.5 * y.std(), len(out)), 4)
        start = pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
        out.insert(0, key, [(start + pd.Timedelta(days=int(d))).date().isoformat() for d in np.sort(rng.integers(0, 2 * len(out), len(out)))])
        truth = {"structure": "temporal", "key_column": key, "n_groups": None}
    out.insert(0, "id", np.arange(len(out)))
    out.to_csv(ctx.public / "train.csv", index=False)
    write_truth(ctx.private, truth)
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=src.name, outputs=[OUTPUT],
                                        schema_file="cv_analysis.schema.json", target=src.target, id_column="id",
                                        files={"train": "train.csv"}), CVAnalysis)


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    a = load_output(CVAnalysis, ctx.outputs, OUTPUT)
    c = Checks()
    s = t["structure"]
    c.add("structure", a.structure == s, 2, "ok" if a.structure == s else f"rows are {s} (by {t['key_column']}), reported {a.structure}")
    c.add("key_column", a.key_column == t["key_column"], 2, "ok" if a.key_column == t["key_column"] else f"the {s} key is {t['key_column']}, reported {a.key_column}")
    c.add("recommended_cv", a.recommended_cv in GOOD[s], 2, "ok" if a.recommended_cv in GOOD[s] else
          f"{a.recommended_cv} lets {'the same entity' if s == 'grouped' else 'the future'} leak into training folds; use {sorted(GOOD[s])}")
    if s == "grouped":
        c.add("n_groups", a.n_groups == t["n_groups"], 1, f"true {t['n_groups']}, reported {a.n_groups}")
    else:
        c.add("n_splits", a.n_splits >= 3, 1, "ok" if a.n_splits >= 3 else f"{a.n_splits} time splits give too few validation windows; use at least 3")
    c.add("kfold_is_optimistic", a.kfold_is_optimistic, 1, "ok" if a.kfold_is_optimistic else
          "plain shuffled K-fold overstates the score on this data (near-copies or neighbouring days land on both sides)")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    return {OUTPUT: dumps({"structure": t["structure"], "key_column": t["key_column"], "n_groups": t["n_groups"],
                           "recommended_cv": "group_kfold" if t["structure"] == "grouped" else "time_series_split",
                           "n_splits": 5, "kfold_is_optimistic": True})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Sees the key column but still recommends shuffled folds."""
    t = read_truth(private)
    return {OUTPUT: dumps({"structure": t["structure"], "key_column": t["key_column"], "recommended_cv": "stratified_kfold",
                           "n_splits": 2, "n_groups": None, "kfold_is_optimistic": False})}
