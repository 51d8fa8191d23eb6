"""baseline-model: a generated classification table -> baseline.py + README snippet.

The grader runs baseline.py in the sandbox (5 minutes), scores its predictions on
the hidden labels against a reference model's AUC, and checks that it
cross-validates, prints metrics, uses a standard model, and that the README
says how to run it."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, invalid, read_truth,
                                     run_sandboxed, write_manifest, write_truth)

NAME = "baseline-model"
KIND = "engineering"
DESCRIPTION = "Write baseline.py (cross-validated logistic regression or trees) and a README snippet; graded by running it."


def applies_to(task_type: str) -> bool:
    return False


def _reference_model():  # type: ignore[no-untyped-def]
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num = ["age", "income", "balance", "tenure", "score", "visits"]
    return make_pipeline(ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["segment", "channel"]),
    ]), LogisticRegression(max_iter=2000))


def prepare(ctx: PrepareContext) -> None:
    from sklearn.metrics import roc_auc_score

    rng = ctx.rng
    n = 1500 if ctx.lite else 4000
    df = pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float), "income": np.round(rng.lognormal(10.5, 0.5, n)),
        "balance": np.round(rng.normal(2000, 800, n), 2), "tenure": rng.integers(0, 30, n).astype(float),
        "score": np.round(rng.normal(0, 1, n), 3), "visits": rng.poisson(4, n).astype(float),
        "segment": rng.choice(["a", "b", "c", "d"], n), "channel": rng.choice(["web", "app", "branch"], n),
    })
    seg = df["segment"].map({"a": 0.8, "b": 0.0, "c": -0.5, "d": 0.3})
    logit = (0.9 * df["score"] - 0.04 * (df["age"] - 45) + 0.6 * np.log(df["income"] / 36000) + 0.12 * df["visits"]
             - 0.05 * df["tenure"] + seg + rng.normal(0, 0.5, n) - 0.3)
    df["target"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    for col in ("income", "tenure", "channel"):
        df.loc[rng.random(n) < 0.08, col] = np.nan
    df.insert(0, "id", np.arange(n))
    test_mask = rng.random(n) < 0.3
    train, test = df[~test_mask], df[test_mask]
    train.to_csv(ctx.public / "train.csv", index=False)
    test.drop(columns=["target"]).to_csv(ctx.public / "test.csv", index=False)
    test[["id", "target"]].to_csv(ctx.private / "answers.csv", index=False)
    feats = [c for c in df.columns if c not in ("id", "target")]
    train_f = train[feats].assign(channel=train["channel"].fillna("missing"))
    test_f = test[feats].assign(channel=test["channel"].fillna("missing"))
    model = _reference_model().fit(train_f, train["target"])
    write_truth(ctx.private, {"reference_auc": float(roc_auc_score(test["target"], model.predict_proba(test_f)[:, 1]))})
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=NAME, outputs=["baseline.py", "README.md"],
                                        target="target", id_column="id", files={"train": "train.csv", "test": "test.csv"}))


def grade(ctx: GradeContext) -> Grade:
    from sklearn.metrics import roc_auc_score

    t = read_truth(ctx.private)
    if "baseline.py" not in ctx.outputs:
        return invalid("no baseline.py in /home/submission")
    ex = run_sandboxed(ctx.workdir, {"baseline.py": ctx.outputs["baseline.py"]}, ctx.public, ["python3", "baseline.py"],
                       time_limit_s=300, env={"OUTPUT_DIR": "/home/submission"}, sandbox=ctx.sandbox)
    if not ex.ok:
        return invalid(ex.reason("python baseline.py"))
    src = ctx.outputs["baseline.py"].decode(errors="replace")
    c = Checks()
    c.add("runs", 1, 2, f"exited 0 in {ex.seconds:.0f}s")
    printed = re.search(r"(auc|roc|accuracy|log.?loss)[^\n]*\d\.\d", ex.log, re.I) is not None
    c.add("prints metrics", printed, 1, "ok" if printed else "no metric (AUC, accuracy) printed with its value")
    cv = re.search(r"cross_val|KFold|cross_validate|GridSearchCV|StratifiedKFold", src) is not None
    c.add("cross-validation", cv, 1, "ok" if cv else "no cross-validation in baseline.py")
    model = re.search(r"LogisticRegression|RandomForest|GradientBoosting|DecisionTree|ExtraTrees|XGB|LGBM|CatBoost", src) is not None
    c.add("standard model", model, 0.5, "ok" if model else "neither a logistic regression nor a tree model")
    answers = pd.read_csv(ctx.private / "answers.csv")
    pred_path = ex.out_dir / "predictions.csv"
    try:
        pred = pd.read_csv(pred_path)
        merged = answers.merge(pred[["id", "probability"]], on="id", how="left")
        p = pd.to_numeric(merged["probability"], errors="coerce")
        problem = None if p.notna().all() and p.between(0, 1).all() else \
            f"{int(p.isna().sum())} test ids without a probability, {int((~p.between(0, 1) & p.notna()).sum())} outside [0, 1]"
    except Exception as e:  # noqa: BLE001 - a malformed file is the agent's error
        problem, p = f"predictions.csv unreadable or without id/probability columns ({type(e).__name__})", None
    c.add("predictions file", problem is None, 1, "ok" if problem is None else problem)
    if problem is None and p is not None:
        auc = float(roc_auc_score(merged["target"], p))
        gap = t["reference_auc"] - auc
        c.add("test AUC", 1 - max(0.0, gap - 0.02) / 0.13, 2,
              f"test AUC {auc:.4f} vs reference {t['reference_auc']:.4f} (full marks within 0.02, none at 0.15 below)")
    else:
        c.add("test AUC", 0, 2, "no usable predictions")
    readme = ctx.outputs.get("README.md", b"").decode(errors="replace")
    ok = re.search(r"```[a-z]*\s*\n[^`]*python3? [^\n`]*baseline\.py", readme) is not None
    c.add("README snippet", ok, 1, "ok" if ok else "README.md has no code block running `python baseline.py`")
    return c.grade()


REFERENCE = '''"""Baseline: logistic regression with median imputation, scaling and one-hot, 5-fold CV."""
import os
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

data = Path(os.environ.get("DATA_DIR", "/home/data"))
out = Path(os.environ.get("OUTPUT_DIR", "/home/submission"))
train, test = pd.read_csv(data / "train.csv"), pd.read_csv(data / "test.csv")
X, y = train.drop(columns=["id", "target"]), train["target"]
num = X.select_dtypes("number").columns.tolist()
cat = [c for c in X.columns if c not in num]
model = make_pipeline(ColumnTransformer([
    ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
    ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), cat),
]), LogisticRegression(max_iter=2000))
cv = cross_validate(model, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=0), scoring=["roc_auc", "accuracy"])
print(f"CV AUC {cv['test_roc_auc'].mean():.4f} ± {cv['test_roc_auc'].std():.4f}")
print(f"CV accuracy {cv['test_accuracy'].mean():.4f}")
model.fit(X, y)
out.mkdir(parents=True, exist_ok=True)
pd.DataFrame({"id": test["id"], "probability": model.predict_proba(test[X.columns])[:, 1]}).to_csv(out / "predictions.csv", index=False)
'''
README = """## Baseline

```sh
python baseline.py        # reads /home/data, writes $OUTPUT_DIR/predictions.csv
```

Prints the 5-fold cross-validated AUC and accuracy of a logistic regression.
"""
WRONG = '''import os
import pandas as pd
test = pd.read_csv("/home/data/test.csv")
train = pd.read_csv("/home/data/train.csv")
rate = train["target"].mean()
print("positive rate", rate)
pd.DataFrame({"id": test["id"], "probability": rate}).to_csv(os.path.join(os.environ.get("OUTPUT_DIR", "/home/submission"), "predictions.csv"), index=False)
'''


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return {"baseline.py": REFERENCE.encode(), "README.md": README.encode()}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Runs and writes valid predictions, but predicts the base rate: no model, no CV, no README."""
    return {"baseline.py": WRONG.encode()}
