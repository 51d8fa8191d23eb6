"""encoding: five categorical columns of known type planted next to a few numeric ones.

binary, ordinal (a natural vocabulary, monotone in the target), low-cardinality
nominal, high-cardinality nominal (generated names), numeric codes (3-digit
integers that label categories). Names and vocabularies are drawn from the seed.
medium: the ordinal column uses a vocabulary whose alphabetical order is wrong
(`Level 10` before `Level 2`, `gold` before `silver`), and one more column holds
numbers stored as text with a unit (`12.5 kg`).
hard: medium, plus a test.csv in which the high-cardinality column has levels never
seen in training (their count is asked) and rare levels in training.
Checks per planted column: type, a sound encoding, distinct count, and the order
of the ordinal column; plus the numeric columns recognised as numeric; (hard) the
count of unseen test levels."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, dumps,
                                     load_output, read_truth, write_manifest, write_truth)

NAME = "encoding"
KIND = "technique"
DESCRIPTION = "Type each column (binary / ordinal / low- and high-cardinality nominal / numeric code / numeric) and choose its encoding."
OUTPUT = "encoding_analysis.json"
ColumnType = Literal["numeric", "binary", "ordinal", "nominal_low_cardinality", "nominal_high_cardinality", "numeric_code",
                     "numeric_text"]
LEVELS = ("easy", "medium", "hard")
TRICKY_ORDINAL = [
    ("membership_tier", ["bronze", "silver", "gold", "platinum", "diamond"]),
    ("pain_level", ["none", "mild", "moderate", "severe", "extreme"]),
    ("seniority", ["intern", "junior", "mid", "senior", "principal"]),
    ("risk_grade", [f"Level {i}" for i in range(1, 12)]),
    ("priority", ["P4", "P3", "P2", "P1", "P0"]),
]
UNITS = [("weight", "kg"), ("distance", "km"), ("duration", "min"), ("dose", "mg")]
GOOD_ENCODINGS = {
    "numeric": {"none", "standard_scale"},
    "binary": {"binary", "one_hot", "ordinal"},
    "ordinal": {"ordinal"},
    "nominal_low_cardinality": {"one_hot"},
    "nominal_high_cardinality": {"target", "frequency", "hashing"},
    "numeric_code": {"one_hot", "target", "frequency", "hashing"},
    "numeric_text": {"parse_number"},
}
BINARY = [("smoker", ["yes", "no"]), ("has_insurance", ["Y", "N"]), ("owns_home", ["true", "false"]), ("sex", ["F", "M"])]
ORDINAL = [
    ("education", ["primary", "secondary", "bachelor", "master", "doctorate"]),
    ("shirt_size", ["XS", "S", "M", "L", "XL"]),
    ("severity", ["low", "medium", "high", "critical"]),
    ("satisfaction", ["very_dissatisfied", "dissatisfied", "neutral", "satisfied", "very_satisfied"]),
    ("income_band", ["very_low", "low", "middle", "high", "very_high"]),
]
NOMINAL = [("region", ["north", "south", "east", "west", "central"]), ("channel", ["web", "store", "phone", "partner"]),
           ("blood_type", ["A", "B", "AB", "O"]), ("payment_method", ["card", "cash", "transfer", "voucher", "wallet", "crypto"])]
HIGH = ["city", "employer", "merchant", "street"]
CODES = ["store_code", "product_code", "branch_code", "zip3"]


class EncodedColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    column_type: ColumnType
    n_unique: int = Field(ge=0)
    encoding: Literal["none", "standard_scale", "binary", "one_hot", "ordinal", "target", "frequency", "hashing", "parse_number"]
    category_order: Optional[list[str]] = Field(None, description="ordinal columns: categories, lowest first")
    n_unseen_in_test: Optional[int] = Field(None, ge=0, description="hard: distinct test.csv values never seen in train.csv")


class EncodingAnalysis(BaseModel):
    """encoding_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    columns: list[EncodedColumn]
    rationale: str = ""


def applies_to(task_type: str, data: str = "tabular") -> bool:
    """Whether this task runs on a competition of this task type (binary | multiclass | regression)
    and data kind (tabular | image | timeseries): only tables have categorical columns."""
    return data == "tabular"


def _words(rng: np.random.Generator, n: int) -> list[str]:
    syl = ["ka", "lo", "mi", "ren", "to", "sa", "vel", "dor", "an", "is", "ur", "el", "bra", "qui", "zen", "fa"]
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(syl, rng.integers(2, 4))).capitalize())
    return sorted(out)


def prepare(ctx: PrepareContext) -> None:
    assert ctx.source is not None
    rng = ctx.rng
    src = ctx.source
    base = src.frame.reset_index(drop=True)
    n = len(base)
    numeric = list(rng.choice(src.features, min(4, len(src.features)), replace=False))
    out = base[numeric].copy()
    # a latent score tied to the target, so the categories carry signal
    y = src.numeric_target()
    latent = pd.Series(y + rng.normal(0, y.std() or 1.0, n)).rank(pct=True).to_numpy()
    bname, bvals = BINARY[rng.integers(len(BINARY))]
    out[bname] = np.where(rng.random(n) < 0.3 + 0.4 * latent, bvals[0], bvals[1])
    vocab = ORDINAL if ctx.level == "easy" else TRICKY_ORDINAL
    oname, ovals = vocab[rng.integers(len(vocab))]
    idx = np.clip((latent * len(ovals) + rng.normal(0, 0.8, n)).astype(int), 0, len(ovals) - 1)
    out[oname] = np.array(ovals)[idx]
    nname, nvals = NOMINAL[rng.integers(len(NOMINAL))]
    out[nname] = rng.choice(nvals, n)
    hname = str(rng.choice(HIGH))
    hvals = _words(rng, int(rng.integers(60, 120)))
    out[hname] = rng.choice(hvals, n)
    cname = str(rng.choice(CODES))
    cvals = rng.choice(np.arange(100, 1000), int(rng.integers(7, 13)), replace=False)
    out[cname] = rng.choice(cvals, n)
    out[src.target] = base[src.target]
    planted = [bname, oname, nname, hname, cname]
    types = {bname: "binary", oname: "ordinal", nname: "nominal_low_cardinality", hname: "nominal_high_cardinality",
             cname: "numeric_code", **{c: "numeric" for c in numeric}}
    if ctx.level != "easy":  # a quantity written as text with its unit
        uname, unit = UNITS[int(rng.integers(len(UNITS)))]
        out[uname] = [f"{v:.1f} {unit}" for v in np.round(np.exp(rng.normal(2.5, 0.5, n)) + 3 * latent, 1)]
        planted.append(uname)
        types[uname] = "numeric_text"
    cols = list(rng.permutation(numeric + planted))
    out = out[cols + [src.target]]
    out.insert(0, "id", np.arange(n))
    files, unseen, notes = {"train": "train.csv"}, {}, ""
    if ctx.level == "hard":  # rows to predict, with high-cardinality levels never seen in training
        test = out.iloc[rng.choice(n, max(60, n // 3), replace=False)].drop(columns=[src.target]).reset_index(drop=True)
        new = [w + "ville" for w in _words(rng, int(rng.integers(8, 20)))]
        hit = rng.random(len(test)) < 0.25
        test.loc[hit, hname] = rng.choice(new, int(hit.sum()))
        test["id"] = np.arange(n, n + len(test))
        test.to_csv(ctx.public / "test.csv", index=False)
        files["test"] = "test.csv"
        unseen = {c: int(len(set(test[c].astype(str)) - set(out[c].astype(str)))) for c in cols if types[c] == "nominal_high_cardinality"}
        notes = ("`/home/data/test.csv` holds the rows to predict. For every nominal_high_cardinality column also give "
                 "`n_unseen_in_test`: how many distinct values of test.csv never occur in train.csv.")
    out.to_csv(ctx.public / "train.csv", index=False)
    write_truth(ctx.private, {
        "level": ctx.level,
        "columns": {c: {"column_type": types[c], "n_unique": int(out[c].nunique())} for c in cols},
        "ordinal_order": {oname: ovals}, "unseen_in_test": unseen,
    })
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=src.name, outputs=[OUTPUT],
                                        schema_file="encoding_analysis.schema.json", target=src.target, id_column="id",
                                        files=files, level=ctx.level, notes=notes), EncodingAnalysis)


def grade(ctx: GradeContext) -> Grade:
    truth = read_truth(ctx.private)
    a = load_output(EncodingAnalysis, ctx.outputs, OUTPUT)
    reported = {col.name: col for col in a.columns}
    c = Checks()
    numeric_ok, numeric_bad = 0, []
    for name, t in truth["columns"].items():
        kind = t["column_type"]
        r = reported.get(name)
        if kind == "numeric":
            if r is not None and r.column_type == "numeric":
                numeric_ok += 1
            else:
                numeric_bad.append(f"{name} ({r.column_type if r else 'missing'})")
            continue
        if r is None:
            c.add(f"{name}: type", 0, 1, f"{name} ({kind}) not reported")
            c.add(f"{name}: encoding", 0, 1, "not reported")
            c.add(f"{name}: n_unique", 0, 0.5, "not reported")
        else:
            c.add(f"{name}: type", r.column_type == kind, 1, "ok" if r.column_type == kind else f"{name} is {kind}, reported {r.column_type}")
            good = GOOD_ENCODINGS[kind]
            c.add(f"{name}: encoding", r.encoding in good, 1, "ok" if r.encoding in good else f"{r.encoding} does not suit a {kind} column; use one of {sorted(good)}")
            c.add(f"{name}: n_unique", r.n_unique == t["n_unique"], 0.5, f"true {t['n_unique']}, reported {r.n_unique}")
        if kind == "ordinal":
            order = truth["ordinal_order"][name]
            got = r.category_order if r else None
            c.add(f"{name}: order", got == order, 1, "ok" if got == order else f"the order is {order}, reported {got}")
    for name, k in truth.get("unseen_in_test", {}).items():
        got = reported[name].n_unseen_in_test if name in reported else None
        c.add(f"{name}: n_unseen_in_test", got == k, 1.5, "ok" if got == k else
              f"{k} distinct test values of {name} never occur in training (the encoder must map them somewhere), reported {got}")
    total = sum(1 for t in truth["columns"].values() if t["column_type"] == "numeric")
    c.add("numeric columns", numeric_ok / max(1, total), 1,
          "ok" if not numeric_bad else f"{numeric_ok}/{total} numeric columns recognised; wrong: {', '.join(numeric_bad)}")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    enc = {"numeric": "standard_scale", "binary": "binary", "ordinal": "ordinal", "nominal_low_cardinality": "one_hot",
           "nominal_high_cardinality": "target", "numeric_code": "one_hot", "numeric_text": "parse_number"}
    cols = [{"name": k, **v, "encoding": enc[v["column_type"]], "category_order": t["ordinal_order"].get(k),
             "n_unseen_in_test": t.get("unseen_in_test", {}).get(k)} for k, v in t["columns"].items()]
    return {OUTPUT: dumps({"columns": cols})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Types by dtype only: every string column one-hot nominal, every number numeric."""
    t = read_truth(private)
    cols = []
    for k, v in t["columns"].items():
        numeric = v["column_type"] in ("numeric", "numeric_code")
        cols.append({"name": k, "n_unique": v["n_unique"], "column_type": "numeric" if numeric else "nominal_low_cardinality",
                     "encoding": "standard_scale" if numeric else "one_hot"})
    return {OUTPUT: dumps({"columns": cols})}
