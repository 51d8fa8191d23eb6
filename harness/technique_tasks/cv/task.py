"""cv: rows made dependent, so plain shuffled K-fold overstates the score.

grouped: base rows repeated 2-6 times with small noise under an entity id
(patient_id, customer_id, ...); rows shuffled. temporal: rows ordered along a
smooth latent (neighbours alike) and given consecutive dates, with a drift in the
target. Which one, and the column name, come from the seed.
medium: the same, disguised: the entity key has a neutral name (`ref`, `account`)
next to a decoy integer column (the visit number within the entity), and the time
key is an integer day number rather than a date.
hard: rows both grouped and time-ordered (each entity seen on several dates), a
test.csv whose entities partly also appear in train.csv (the share is asked).
Checks: structure, key column, scheme, group count (or enough time splits),
and that plain K-fold is recognised as optimistic; hard: the time column and the
share of test entities seen in training."""

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
GOOD = {"grouped": {"group_kfold", "stratified_group_kfold", "leave_one_group_out"}, "temporal": {"time_series_split"},
        "grouped_temporal": {"group_time_series_split"}}
LEVELS = ("easy", "medium", "hard")
NEUTRAL_KEYS = ["ref", "account", "member", "subject", "unit"]
DAY_COLUMNS = ["day_number", "t", "period", "tick"]


class CVAnalysis(BaseModel):
    """cv_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    structure: Literal["iid", "grouped", "temporal", "grouped_temporal"]
    key_column: Optional[str] = Field(None, description="the group key (grouped, grouped_temporal) or the time key (temporal)")
    time_column: Optional[str] = Field(None, description="grouped_temporal: the time key")
    recommended_cv: Literal["kfold", "stratified_kfold", "group_kfold", "stratified_group_kfold", "leave_one_group_out",
                            "time_series_split", "group_time_series_split", "holdout"]
    test_groups_seen_in_train: Optional[float] = Field(None, ge=0, le=1, description="hard: share of test.csv entities also in train.csv")
    n_splits: int = Field(ge=2, le=100)
    n_groups: Optional[int] = Field(None, ge=0)
    kfold_is_optimistic: bool
    plain_kfold_score: Optional[float] = None
    recommended_cv_score: Optional[float] = None
    metric: str = ""
    rationale: str = ""


def applies_to(task_type: str, data: str = "tabular") -> bool:
    """Whether this task runs on a competition of this task type (binary | multiclass | regression)
    and data kind (tabular | image | timeseries): tables and series (time-ordered and grouped readings)."""
    return data in ("tabular", "timeseries")


def prepare(ctx: PrepareContext) -> None:
    assert ctx.source is not None
    rng = ctx.rng
    src = ctx.source
    base = src.frame.reset_index(drop=True)
    feats = src.features
    structure = "grouped" if (ctx.seed >> 3) % 2 else "temporal"
    if ctx.level == "hard":
        _prepare_hard(ctx, rng)
        return
    if structure == "grouped":
        key = str(rng.choice(GROUP_COLUMNS if ctx.level == "easy" else NEUTRAL_KEYS))
        n_groups = min(len(base), 60 if ctx.lite else 150)
        picks = rng.choice(len(base), n_groups, replace=False)
        sizes = rng.integers(2, 7, n_groups)
        rows = np.repeat(picks, sizes)
        out = base.iloc[rows].reset_index(drop=True)
        noise = rng.normal(0, 0.05, (len(out), len(feats))) * base[feats].std().to_numpy()
        out[feats] = np.round(out[feats].to_numpy(dtype=float) + noise, 5)
        ids = rng.choice(np.arange(10000, 99999), n_groups, replace=False)
        out.insert(0, key, np.repeat(ids, sizes))
        if ctx.level == "medium":  # a decoy: the visit number within the entity, fewer values than the key
            out.insert(int(rng.integers(1, len(out.columns))), "visit_number", np.concatenate([np.arange(1, k + 1) for k in sizes]))
        out = out.iloc[rng.permutation(len(out))].reset_index(drop=True)
        truth = {"structure": "grouped", "key_column": key, "n_groups": int(n_groups)}
    else:
        key = str(rng.choice(TIME_COLUMNS if ctx.level == "easy" else DAY_COLUMNS))
        z = (base[feats] - base[feats].mean()) / base[feats].std().replace(0, 1)
        latent = z.to_numpy() @ rng.normal(0, 1, len(feats))
        order = np.argsort(latent + rng.normal(0, 0.3 * latent.std(), len(latent)))
        out = base.iloc[order].reset_index(drop=True)
        y = out[src.target]
        if not src.is_classification:  # drift: the level of the target moves over time
            out[src.target] = np.round(y + np.linspace(0, 0.5 * y.std(), len(out)), 4)
        start = pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
        days = np.sort(rng.integers(0, 2 * len(out), len(out)))
        out.insert(0, key, [(start + pd.Timedelta(days=int(d))).date().isoformat() for d in days] if ctx.level == "easy"
                   else days + int(rng.integers(100, 900)))
        truth = {"structure": "temporal", "key_column": key, "n_groups": None}
    out = out.iloc[rng.permutation(len(out))].reset_index(drop=True) if ctx.level == "medium" else out
    out.insert(0, "id", np.arange(len(out)))
    out.to_csv(ctx.public / "train.csv", index=False)
    write_truth(ctx.private, {**truth, "level": ctx.level})
    notes = "The time key, if any, may be a plain day number rather than a date." if ctx.level == "medium" else ""
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=src.name, outputs=[OUTPUT],
                                        schema_file="cv_analysis.schema.json", target=src.target, id_column="id",
                                        files={"train": "train.csv"}, level=ctx.level, notes=notes), CVAnalysis)


def _prepare_hard(ctx: PrepareContext, rng: np.random.Generator) -> None:
    """Entities seen on several dates (a drifting state each), split by date; some test entities also in train."""
    assert ctx.source is not None
    src = ctx.source
    base = src.frame.reset_index(drop=True)
    feats = src.features
    key, tcol = str(rng.choice(GROUP_COLUMNS)), str(rng.choice(TIME_COLUMNS))
    n_groups = min(len(base), 60 if ctx.lite else 150)
    picks = rng.choice(len(base), n_groups, replace=False)
    sizes = rng.integers(3, 8, n_groups)
    out = base.iloc[np.repeat(picks, sizes)].reset_index(drop=True)
    sd = base[feats].std().to_numpy()
    out[feats] = np.round(out[feats].to_numpy(dtype=float) + rng.normal(0, 0.05, (len(out), len(feats))) * sd, 5)
    ids = rng.choice(np.arange(10000, 99999), n_groups, replace=False)
    out.insert(0, key, np.repeat(ids, sizes))
    start = pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
    first = rng.integers(0, 400, n_groups)
    days = np.concatenate([f + np.sort(rng.integers(0, 200, k)) for f, k in zip(first, sizes, strict=True)])
    out.insert(1, tcol, [(start + pd.Timedelta(days=int(d))).date().isoformat() for d in days])
    out = out.iloc[np.argsort(days, kind="stable")].reset_index(drop=True)
    cut = int(0.75 * len(out))
    train, test = out.iloc[:cut].copy(), out.iloc[cut:].drop(columns=[src.target]).copy()
    train = train.iloc[rng.permutation(len(train))].reset_index(drop=True)
    train.insert(0, "id", np.arange(len(train)))
    test.insert(0, "id", np.arange(len(train), len(train) + len(test)))
    train.to_csv(ctx.public / "train.csv", index=False)
    test.to_csv(ctx.public / "test.csv", index=False)
    seen = float(test[key].drop_duplicates().isin(set(train[key])).mean())
    write_truth(ctx.private, {"level": "hard", "structure": "grouped_temporal", "key_column": key, "time_column": tcol,
                              "n_groups": int(train[key].nunique()), "test_groups_seen_in_train": seen})
    notes = ("`/home/data/test.csv` holds the later rows to predict. Rows may be grouped and time-ordered at once: then "
             "`structure` is `grouped_temporal`, `key_column` the group key, `time_column` the time key, and the scheme "
             "`group_time_series_split` (train on the past, validate on later dates, no entity on both sides). Give in "
             "`test_groups_seen_in_train` the share of distinct test entities that also occur in train.csv, and in "
             "`n_groups` the number of entities in train.csv.")
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=src.name, outputs=[OUTPUT],
                                        schema_file="cv_analysis.schema.json", target=src.target, id_column="id",
                                        files={"train": "train.csv", "test": "test.csv"}, level="hard", notes=notes), CVAnalysis)


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    a = load_output(CVAnalysis, ctx.outputs, OUTPUT)
    c = Checks()
    s = t["structure"]
    c.add("structure", a.structure == s, 2, "ok" if a.structure == s else f"rows are {s} (by {t['key_column']}), reported {a.structure}")
    c.add("key_column", a.key_column == t["key_column"], 2, "ok" if a.key_column == t["key_column"] else f"the {s} key is {t['key_column']}, reported {a.key_column}")
    c.add("recommended_cv", a.recommended_cv in GOOD[s], 2, "ok" if a.recommended_cv in GOOD[s] else
          f"{a.recommended_cv} lets {'the same entity' if s == 'grouped' else 'the future'} leak into training folds; use {sorted(GOOD[s])}")
    if s == "grouped_temporal":
        c.add("time_column", a.time_column == t["time_column"], 1, "ok" if a.time_column == t["time_column"] else
              f"the time key is {t['time_column']}, reported {a.time_column}")
        seen = t["test_groups_seen_in_train"]
        ok = a.test_groups_seen_in_train is not None and abs(a.test_groups_seen_in_train - seen) <= 0.03
        c.add("test_groups_seen_in_train", ok, 1, "ok" if ok else
              f"{seen:.3f} of the test entities also occur in train.csv, reported {a.test_groups_seen_in_train}")
    if s != "temporal":
        c.add("n_groups", a.n_groups == t["n_groups"], 1, f"true {t['n_groups']}, reported {a.n_groups}")
    else:
        c.add("n_splits", a.n_splits >= 3, 1, "ok" if a.n_splits >= 3 else f"{a.n_splits} time splits give too few validation windows; use at least 3")
    c.add("kfold_is_optimistic", a.kfold_is_optimistic, 1, "ok" if a.kfold_is_optimistic else
          "plain shuffled K-fold overstates the score on this data (near-copies or neighbouring days land on both sides)")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    cv = {"grouped": "group_kfold", "temporal": "time_series_split", "grouped_temporal": "group_time_series_split"}
    return {OUTPUT: dumps({"structure": t["structure"], "key_column": t["key_column"], "n_groups": t["n_groups"],
                           "recommended_cv": cv[t["structure"]], "time_column": t.get("time_column"),
                           "test_groups_seen_in_train": t.get("test_groups_seen_in_train"),
                           "n_splits": 5, "kfold_is_optimistic": True})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Sees the key column but still recommends shuffled folds (hard: sees only the time order)."""
    t = read_truth(private)
    if t["structure"] == "grouped_temporal":
        return {OUTPUT: dumps({"structure": "grouped", "key_column": t["key_column"], "recommended_cv": "group_kfold",
                               "n_splits": 5, "n_groups": t["n_groups"], "kfold_is_optimistic": True,
                               "test_groups_seen_in_train": 0.0})}
    return {OUTPUT: dumps({"structure": t["structure"], "key_column": t["key_column"], "recommended_cv": "stratified_kfold",
                           "n_splits": 2, "n_groups": None, "kfold_is_optimistic": False})}
