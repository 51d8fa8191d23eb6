"""The baseline agent: infer the task from the sample submission, choose a model by
cross-validation, refit on all training data, predict, validate, save code and logs.

Task inference (no metadata needed beyond mlebench's files):
- the sample submission's first column is the id, the others are what to predict;
- one target column that is in train.csv: regression if the target is continuous,
  classification otherwise, and probabilities when the sample holds fractions;
- several target columns: class probabilities for the label column of train.csv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

DATA = Path(os.environ.get("DATA_DIR", "/home/data"))
SUBMISSION = Path(os.environ.get("SUBMISSION_DIR", "/home/submission"))
LOGS = Path(os.environ.get("LOGS_DIR", "/home/logs"))
CODE = Path(os.environ.get("CODE_DIR", "/home/code"))
SEED = int(os.environ.get("HARNESS_SEED", "0"))


def log(msg: str) -> None:
    print(f"[baseline {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def preprocessor(X: pd.DataFrame, scale: bool) -> ColumnTransformer:
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    num = [SimpleImputer(strategy="median")] + ([StandardScaler()] if scale else [])
    return ColumnTransformer([
        ("num", make_pipeline(*num), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore", max_categories=30)), categorical),
    ])


def candidates(X: pd.DataFrame, classification: bool) -> dict:
    if classification:
        return {
            "logistic_regression": make_pipeline(preprocessor(X, True), LogisticRegression(C=1.0, max_iter=2000)),
            "random_forest": make_pipeline(preprocessor(X, False), RandomForestClassifier(n_estimators=300, random_state=SEED, n_jobs=1)),
            "hist_gradient_boosting": make_pipeline(preprocessor(X, False), HistGradientBoostingClassifier(random_state=SEED)),
        }
    return {
        "ridge": make_pipeline(preprocessor(X, True), Ridge(alpha=1.0)),
        "random_forest": make_pipeline(preprocessor(X, False), RandomForestRegressor(n_estimators=300, min_samples_leaf=3, random_state=SEED, n_jobs=1)),
        "hist_gradient_boosting": make_pipeline(preprocessor(X, False), HistGradientBoostingRegressor(random_state=SEED, max_iter=200, learning_rate=0.05)),
    }


def main() -> None:
    train = pd.read_csv(DATA / "train.csv")
    test = pd.read_csv(DATA / "test.csv")
    sample = pd.read_csv(DATA / "sample_submission.csv")
    id_col, targets = sample.columns[0], list(sample.columns[1:])
    label_col = targets[0] if len(targets) == 1 and targets[0] in train.columns else \
        next(c for c in train.columns if c not in test.columns and c != id_col)
    features = [c for c in test.columns if c != id_col and c in train.columns]
    X, y, X_test = train[features], train[label_col], test[features]
    classification = len(targets) > 1 or not pd.api.types.is_float_dtype(y) or y.nunique() <= 2
    sample_vals = sample[targets[0]]
    wants_proba = len(targets) > 1 or (pd.api.types.is_float_dtype(sample_vals) and classification and y.nunique() == 2)
    if classification:
        scoring = ("roc_auc" if y.nunique() == 2 else "neg_log_loss") if wants_proba else "accuracy"
        cv = StratifiedKFold(5, shuffle=True, random_state=SEED)
    else:
        scoring, cv = "neg_root_mean_squared_error", KFold(5, shuffle=True, random_state=SEED)
    log(f"{len(train)} training rows, {len(features)} features, target {label_col!r}: "
        f"{'classification' if classification else 'regression'}, choosing by {scoring}")
    results = {}
    for name, model in candidates(X, classification).items():
        scores = cross_val_score(model, X, y, cv=cv, scoring=scoring)
        results[name] = float(np.mean(scores))
        log(f"  {name}: {results[name]:.4f} ± {np.std(scores):.4f}")
    best = max(results, key=results.get)
    log(f"chose {best}")
    model = candidates(X, classification)[best].fit(X, y)
    out = pd.DataFrame({id_col: test[id_col]})
    if len(targets) > 1:
        proba = model.predict_proba(X_test)
        by_class = {str(c): proba[:, i] for i, c in enumerate(model.classes_)}
        for t in targets:
            key = next((k for k in by_class if t == k or t.endswith(f"_{k}") or t.endswith(k)), None)
            out[t] = by_class[key] if key is not None else 1.0 / len(targets)
    elif wants_proba:
        out[targets[0]] = model.predict_proba(X_test)[:, list(model.classes_).index(max(model.classes_))]
    else:
        out[targets[0]] = model.predict(X_test)
    SUBMISSION.mkdir(parents=True, exist_ok=True)
    out.to_csv(SUBMISSION / "submission.csv", index=False)
    (LOGS / "cv_results.json").write_text(json.dumps({"scoring": scoring, "scores": results, "chosen": best}, indent=1))
    shutil.copyfile(__file__, CODE / "solve.py")
    check = subprocess.run([sys.executable, "-m", "harness.validate", str(SUBMISSION / "submission.csv")],
                           capture_output=True, text=True)
    log(f"validation: {check.stdout.strip() or check.stderr.strip()}")


if __name__ == "__main__":
    if os.environ.get("HARNESS_TASK_KIND") == "technique":
        from techniques import solve_technique  # technique and engineering tasks

        solve_technique()
    else:
        main()
