"""The baseline agent: read the task, turn the data into features by task kind, choose a
model by cross-validation on the competition's own metric, refit, predict, validate, and
save code and logs.

What it reads (nothing beyond mlebench's files):
- the sample submission: its first column is the id, the others are what to predict;
  one column that is in train.csv -> labels or values; several -> class probabilities;
- `description.md`: which metric the host scores with (AUC, log loss, accuracy, macro-F1,
  RMSE, MAE), so the models are compared the way the leaderboard will compare them;
- the files present: `train_series.csv` -> time series, `train/*.png` -> images, else a table
  (see features.py).

Models: gradient boosting (sklearn's HistGradientBoosting), a random forest, and a linear
model (plus an RBF support-vector machine on images and series when labels, not
probabilities, are asked for); 5-fold CV (3-fold on larger feature
sets) picks one, and the pick is refit on all training rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features import load_tables

# scikit-learn is imported where the competition pipeline uses it: a technique task (techniques.py) does not
# pay for loading the whole model zoo in each attempt
if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

DATA = Path(os.environ.get("DATA_DIR", "/home/data"))
SUBMISSION = Path(os.environ.get("SUBMISSION_DIR", "/home/submission"))
LOGS = Path(os.environ.get("LOGS_DIR", "/home/logs"))
CODE = Path(os.environ.get("CODE_DIR", "/home/code"))
SEED = int(os.environ.get("HARNESS_SEED", "0"))

#: description wording -> (sklearn scorer, needs probabilities)
METRICS = [
    (r"log[ -]?loss|logarithmic loss|cross[- ]entropy", "neg_log_loss", True),
    (r"\bauc\b|roc curve|area under", "roc_auc", True),
    (r"macro[- ]?(averaged )?f1|f1 score", "f1_macro", False),
    (r"accuracy", "accuracy", False),
    (r"mean absolute error|\bmae\b", "neg_mean_absolute_error", False),
    (r"root mean squared error|\brmse\b", "neg_root_mean_squared_error", False),
]


def log(msg: str) -> None:
    print(f"[baseline {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def metric_from_description(classification: bool, binary: bool, wants_proba: bool) -> str:
    desc = (DATA / "description.md").read_text().lower() if (DATA / "description.md").is_file() else ""
    evaluation = desc.split("## evaluation", 1)[-1].split("\n## ", 1)[0] if "## evaluation" in desc else desc
    for pattern, scorer, _ in METRICS:
        if re.search(pattern, evaluation):
            if scorer == "roc_auc" and not binary:
                continue
            return scorer
    if classification:
        return ("roc_auc" if binary else "neg_log_loss") if wants_proba else "accuracy"
    return "neg_root_mean_squared_error"


def preprocessor(X: pd.DataFrame, scale: bool) -> ColumnTransformer:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    num = [SimpleImputer(strategy="median")] + ([StandardScaler()] if scale else [])
    steps = [("num", make_pipeline(*num), numeric)]
    if categorical:
        steps.append(("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                           OneHotEncoder(handle_unknown="ignore", max_categories=30)), categorical))
    return ColumnTransformer(steps)


def candidates(X: pd.DataFrame, classification: bool, kind: str, proba: bool, n_classes: int = 2) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    wide = X.shape[1] > 100
    if classification:
        # boosting grows one tree per class per round: fewer, larger steps with many classes
        many = n_classes > 4
        models = {
            "logistic_regression": make_pipeline(preprocessor(X, True), LogisticRegression(C=0.5, max_iter=3000)),
            "hist_gradient_boosting": make_pipeline(preprocessor(X, False), HistGradientBoostingClassifier(
                learning_rate=0.2 if many else 0.08, max_iter=50 if many else 150, max_leaf_nodes=15 if many else 31,
                l2_regularization=1.0, random_state=SEED)),
            "random_forest": make_pipeline(preprocessor(X, False), RandomForestClassifier(
                n_estimators=200, min_samples_leaf=1 if not proba else 2, random_state=SEED, n_jobs=1)),
        }
        if kind in ("images", "series") and not proba:
            models["svm_rbf"] = make_pipeline(preprocessor(X, True), SVC(C=5.0, gamma="scale", random_state=SEED))
        if wide:
            models.pop("random_forest")
        return models
    return {
        "ridge": make_pipeline(preprocessor(X, True), RidgeCV(alphas=np.logspace(-6, 3, 19))),
        "hist_gradient_boosting": make_pipeline(preprocessor(X, False), HistGradientBoostingRegressor(
            learning_rate=0.05, max_iter=300, l2_regularization=1.0, random_state=SEED)),
        "random_forest": make_pipeline(preprocessor(X, False), RandomForestRegressor(
            n_estimators=300, min_samples_leaf=3, random_state=SEED, n_jobs=1)),
    }


def main() -> None:
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    kind, train, test, X, X_test = load_tables(DATA)
    sample = pd.read_csv(DATA / "sample_submission.csv")
    id_col, targets = sample.columns[0], list(sample.columns[1:])
    label_col = targets[0] if len(targets) == 1 and targets[0] in train.columns else \
        next(c for c in train.columns if c not in test.columns and c != id_col)
    y = train[label_col]
    classification = len(targets) > 1 or not pd.api.types.is_float_dtype(y) or y.nunique() <= 2
    binary = classification and y.nunique() == 2
    wants_proba = len(targets) > 1 or (classification and pd.api.types.is_float_dtype(sample[targets[0]]))
    scoring = metric_from_description(classification, binary, wants_proba)
    folds = 5 if X.shape[1] <= 100 else 3
    if classification:
        cv = StratifiedKFold(folds, shuffle=True, random_state=SEED)
    else:
        cv = KFold(folds, shuffle=True, random_state=SEED)
    log(f"{kind}: {len(train)} training rows, {X.shape[1]} features, target {label_col!r}: "
        f"{'classification' if classification else 'regression'}, choosing by {scoring} ({folds}-fold CV)")
    results = {}
    n_classes = int(y.nunique()) if classification else 0
    for name, model in candidates(X, classification, kind, wants_proba, n_classes).items():
        t0 = time.time()
        scores = cross_val_score(model, X, y, cv=cv, scoring=scoring)
        results[name] = float(np.mean(scores))
        log(f"  {name}: {results[name]:.4f} ± {np.std(scores):.4f} ({time.time() - t0:.1f}s)")
    best = max(results, key=results.get)
    log(f"chose {best}")
    model = candidates(X, classification, kind, wants_proba, n_classes)[best].fit(X, y)
    out = pd.DataFrame({id_col: test[id_col]})
    if len(targets) > 1:
        proba = np.clip(model.predict_proba(X_test), 1e-4, 1.0)
        proba /= proba.sum(axis=1, keepdims=True)
        by_class = {str(c): proba[:, i] for i, c in enumerate(model.classes_)}
        for t in targets:
            key = next((k for k in by_class if t == k or t.endswith(f"_{k}")), None)
            out[t] = by_class[key] if key is not None else 1e-4
    elif wants_proba:
        positive = list(model.classes_).index(max(model.classes_))
        out[targets[0]] = np.clip(model.predict_proba(X_test)[:, positive], 1e-4, 1 - 1e-4)
    else:
        out[targets[0]] = model.predict(X_test)
    SUBMISSION.mkdir(parents=True, exist_ok=True)
    out.to_csv(SUBMISSION / "submission.csv", index=False)
    (LOGS / "cv_results.json").write_text(json.dumps({"kind": kind, "scoring": scoring, "scores": results, "chosen": best}, indent=1))
    for name in ("solve.py", "features.py"):
        shutil.copyfile(Path(__file__).with_name(name), CODE / name)
    check = subprocess.run([sys.executable, "-m", "harness.validate", str(SUBMISSION / "submission.csv")],
                           capture_output=True, text=True)
    log(f"validation: {check.stdout.strip() or check.stderr.strip()}")


if __name__ == "__main__":
    if os.environ.get("HARNESS_TASK_KIND") == "technique":
        from techniques import solve_technique  # technique and engineering tasks

        solve_technique()
    elif (DATA / "test.csv").is_file() and {"lead", "number_of_rows"} <= set(pd.read_csv(DATA / "test.csv", nrows=1).columns):
        from ecg import main as digitize_ecg  # image-to-signal (ECG digitization): a classical pipeline

        digitize_ecg()
    else:
        main()
