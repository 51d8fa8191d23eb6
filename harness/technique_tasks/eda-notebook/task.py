"""eda-notebook: a generated table with planted problems -> eda.ipynb, executed.

Planted: a severe class imbalance (5-10 % positives), a constant column, a column
with 35-50 % missing values. Checks on the executed notebook: it runs, every code
cell ran, basic stats and missingness are shown (the missing column and its
count), real plots (label distribution + feature histograms), and the problems
are named (imbalance, the constant column, the missing column)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, execute_notebook, invalid,
                                     new_notebook, notebook_facts, read_truth, write_manifest, write_truth)

NAME = "eda-notebook"
KIND = "engineering"
DESCRIPTION = "Write an EDA notebook for a labelled table; graded by executing it and checking what it found."
OUTPUT = "eda.ipynb"


def applies_to(task_type: str) -> bool:
    return False


def prepare(ctx: PrepareContext) -> None:
    rng = ctx.rng
    n = 600 if ctx.lite else 1500
    pos = float(rng.uniform(0.05, 0.10))
    y = (rng.random(n) < pos).astype(int)
    df = pd.DataFrame({
        "age": np.round(rng.normal(40, 12, n) + 4 * y).clip(18, 90),
        "monthly_spend": np.round(rng.lognormal(3.5, 0.8, n) * (1 - 0.3 * y), 2),
        "visits_30d": rng.poisson(6 - 3 * y),
        "tenure_months": rng.integers(1, 120, n),
        "support_calls": rng.poisson(1 + 2 * y),
        "region": rng.choice(["north", "south", "east", "west"], n),
    })
    const, miss = str(rng.choice(["country_code", "data_version", "source_system"])), str(rng.choice(["last_survey_score", "referral_bonus", "discount_rate"]))
    df[const] = {"country_code": "SE", "data_version": 3, "source_system": "crm"}[const]
    df[miss] = np.round(rng.uniform(0, 10, n), 1)
    rate = float(rng.uniform(0.35, 0.5))
    df.loc[rng.random(n) < rate, miss] = np.nan
    df["churned"] = y
    df = df[list(rng.permutation(list(df.columns[:-1]))) + ["churned"]]
    df.to_csv(ctx.public / "train.csv", index=False)
    write_truth(ctx.private, {"target": "churned", "positive_rate": float(y.mean()), "constant_column": const,
                              "missing_column": miss, "missing_count": int(df[miss].isna().sum()),
                              "missing_fraction": float(df[miss].isna().mean())})
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=NAME, outputs=[OUTPUT], target="churned",
                                        files={"train": "train.csv"}))


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    if OUTPUT not in ctx.outputs:
        return invalid(f"no {OUTPUT} in /home/submission")
    run = execute_notebook(ctx.workdir, {OUTPUT: ctx.outputs[OUTPUT]}, OUTPUT, ctx.public, sandbox=ctx.sandbox)
    if run.error or run.notebook is None:
        return invalid(run.error or f"{OUTPUT} did not execute")
    f = notebook_facts(run.notebook)
    if f["code_cells"] == 0:
        return invalid(f"{OUTPUT} has no code cells")
    text = (f["output_text"] + "\n" + f["markdown"]).lower()
    c = Checks()
    c.add("executes", 1, 2, "ran top to bottom")
    c.add("loads the data", "train.csv" in f["source"], 0.5, "ok" if "train.csv" in f["source"] else "train.csv is never read")
    stats = ("mean" in text and "std" in text) or "describe" in f["source"]
    c.add("basic statistics", stats, 1, "ok" if stats else "no summary statistics (mean/std) in the outputs")
    miss = t["missing_column"].lower()
    count_shown = str(t["missing_count"]) in f["output_text"] or any(
        f"{x:.{d}f}" in f["output_text"] for d in (1, 2, 3) for x in (t["missing_fraction"], 100 * t["missing_fraction"]))
    ok = miss in text and count_shown
    c.add("missingness", ok, 1, "ok" if ok else f"the missing values of {t['missing_column']} ({t['missing_count']} rows) are not shown")
    c.add("label plot", f["images"] >= 1, 1, f"{f['images']} plot(s) rendered")
    hist = f["images"] >= 2 and re.search(r"hist|histplot|distplot|displot", f["source"]) is not None
    c.add("feature histograms", hist, 1, "ok" if hist else "no feature histograms rendered")
    imb = re.search(r"imbalanc|minority|rare class|skewed label|class ratio", text) is not None
    c.add("flags imbalance", imb, 1, "ok" if imb else f"the label is {t['positive_rate']:.1%} positive; not flagged as imbalanced")
    const = t["constant_column"].lower()
    ok = const in text and re.search(r"constant|single value|one unique|zero variance|no variance", text) is not None
    c.add("flags constant column", ok, 1, "ok" if ok else f"{t['constant_column']} is constant; not flagged")
    ok = miss in text and re.search(r"missing|null|nan", text) is not None
    c.add("flags missing column", ok, 0.5, "ok" if ok else f"{t['missing_column']} is {t['missing_fraction']:.0%} missing; not flagged")
    ran = f["executed_cells"] == f["code_cells"]
    c.add("all cells executed", ran, 1, "ok" if ran else f"{f['executed_cells']}/{f['code_cells']} code cells ran")
    return c.grade()


REFERENCE = [
    ("md", "# EDA of train.csv"),
    ("code", "import pandas as pd\nimport matplotlib.pyplot as plt\ndf = pd.read_csv('/home/data/train.csv')\nlabel = 'churned'\ndf.shape"),
    ("code", "df.describe(include='all').T"),
    ("code", "missing = df.isna().sum()\nprint(pd.DataFrame({'missing': missing, 'fraction': (missing / len(df)).round(3)}))"),
    ("code", "df[label].value_counts().plot(kind='bar', title='label distribution')\nplt.show()"),
    ("code", "num = [c for c in df.select_dtypes('number').columns if c != label and df[c].nunique() > 1][:4]\n"
             "df[num].hist(bins=30, figsize=(10, 6))\nplt.show()"),
    ("code", "issues = []\nrate = df[label].mean()\n"
             "if min(rate, 1 - rate) < 0.15:\n    issues.append(f'severe class imbalance: {rate:.1%} positives')\n"
             "for c in df.columns:\n    if df[c].nunique(dropna=False) == 1:\n        issues.append(f'constant column: {c}')\n"
             "    if df[c].isna().mean() > 0.2:\n        issues.append(f'many missing values in {c}: {df[c].isna().mean():.1%}')\n"
             "print('\\n'.join(issues))"),
]
WRONG = [
    ("code", "import pandas as pd\ndf = pd.read_csv('/home/data/train.csv')\nprint(df.head())"),
    ("code", "print(df.describe())"),
    ("md", "The data looks clean; no issues found."),
]


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return {OUTPUT: new_notebook(REFERENCE)}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Runs, shows the head and describe(), plots nothing, finds nothing."""
    return {OUTPUT: new_notebook(WRONG)}
