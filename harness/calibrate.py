"""Write a built-in competition's leaderboard.csv from a field of reference solutions.

`harness calibrate <competition>` prepares the competition, trains a fixed field
of reference solutions of graded strength (model families x hyperparameters x
feature subsets x training fractions, fixed seeds), grades each one with the
competition's own grader against the private answers, and writes
`leaderboard.csv` (best first) and `checksums.yaml`. Anyone can rerun it and get
the same file: nothing in a leaderboard is typed by hand.

The field: 16 model configurations (from a prior up to gradient boosting, extra trees
and a small neural network) x 3 data settings = 48 reference solutions.

A competition whose preparer takes `lite` is calibrated twice: the lite data gets
its own field, `leaderboard.lite.csv` and `checksums.lite.yaml`, and grading uses
that leaderboard for lite attempts (a smaller training set shifts every score, so
medals on lite data are only fair against a field trained on the same data).
The sizes an agent gets (rows, files, MB) are recorded under `sizes` in config.yaml.

A competition whose public data is not one table per split (images, time series)
provides `reference.py` with `load_features(public: Path) -> (X, y, X_test, test_ids)`.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import yaml
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from harness.data import ensure_prepared, preparer_takes_lite, write_checksums
from harness.grading import read_sample
from harness.registry import load_callable
from harness.spec import CompetitionConfig, Settings

SEED = 1234


@dataclass(frozen=True)
class Problem:
    X: pd.DataFrame
    y: pd.Series
    X_test: pd.DataFrame
    test_ids: pd.Series
    id_col: str
    targets: list[str]
    classification: bool
    proba: bool


def load_problem(public: Path, comp: CompetitionConfig) -> Problem:
    sample = pd.read_csv(public / "sample_submission.csv")
    id_col, targets = sample.columns[0], list(sample.columns[1:])
    hook = comp.dir / "reference.py"
    if hook.is_file():
        X, y, X_test, ids = load_callable(comp.dir, "reference:load_features", "reference")(public)
        X, X_test = pd.DataFrame(X), pd.DataFrame(X_test)
        y = pd.Series(y)
    else:
        train, test = pd.read_csv(public / "train.csv"), pd.read_csv(public / "test.csv")
        label = targets[0] if len(targets) == 1 and targets[0] in train.columns else \
            next(c for c in train.columns if c not in test.columns and c != id_col)
        feats = [c for c in test.columns if c != id_col and c in train.columns]
        X = pd.get_dummies(train[feats], dtype=float)
        X_test = pd.get_dummies(test[feats], dtype=float).reindex(columns=X.columns, fill_value=0.0)
        y, ids = train[label], test[id_col]
    classification = comp.kind.endswith(("binary", "multiclass", "classification")) or len(targets) > 1 \
        or not pd.api.types.is_float_dtype(y)
    proba = len(targets) > 1 or (classification and pd.api.types.is_float_dtype(sample[targets[0]]))
    return Problem(X, y, X_test, pd.Series(ids), id_col, targets, classification, proba)


def _models(classification: bool) -> list[tuple[str, Callable[[], Any]]]:
    scaled: Callable[[Any], Any] = lambda m: make_pipeline(SimpleImputer(), StandardScaler(), m)  # noqa: E731
    plain: Callable[[Any], Any] = lambda m: make_pipeline(SimpleImputer(), m)  # noqa: E731
    if classification:
        return [
            ("prior", lambda: DummyClassifier(strategy="prior")),
            ("logreg-C0.001", lambda: scaled(LogisticRegression(C=0.001, max_iter=2000))),
            ("logreg-C0.1", lambda: scaled(LogisticRegression(C=0.1, max_iter=2000))),
            ("logreg-C10", lambda: scaled(LogisticRegression(C=10, max_iter=5000))),
            ("knn-1", lambda: scaled(KNeighborsClassifier(1))),
            ("knn-15", lambda: scaled(KNeighborsClassifier(15))),
            ("tree-d1", lambda: plain(DecisionTreeClassifier(max_depth=1, random_state=SEED))),
            ("tree-d4", lambda: plain(DecisionTreeClassifier(max_depth=4, random_state=SEED))),
            ("naive-bayes", lambda: plain(GaussianNB())),
            ("rf-20-d3", lambda: plain(RandomForestClassifier(20, max_depth=3, random_state=SEED))),
            ("rf-200", lambda: plain(RandomForestClassifier(200, random_state=SEED))),
            ("hgb", lambda: plain(HistGradientBoostingClassifier(random_state=SEED))),
            # the strong end of the field, so a medal means beating well-set-up models
            ("extra-trees-500", lambda: plain(ExtraTreesClassifier(500, random_state=SEED))),
            ("hgb-slow", lambda: plain(HistGradientBoostingClassifier(
                learning_rate=0.03, max_iter=500, l2_regularization=1.0, random_state=SEED))),
            ("mlp-128", lambda: scaled(MLPClassifier(hidden_layer_sizes=(128,), alpha=1e-2, max_iter=1000, random_state=SEED))),
            ("logreg-C1", lambda: scaled(LogisticRegression(C=1.0, max_iter=5000))),
        ]
    return [
        ("mean", lambda: DummyRegressor()),
        ("ridge-a0.1", lambda: scaled(Ridge(alpha=0.1))),
        ("ridge-a100", lambda: scaled(Ridge(alpha=100))),
        ("ridge-a3000", lambda: scaled(Ridge(alpha=3000))),
        ("knn-1", lambda: scaled(KNeighborsRegressor(1))),
        ("knn-15", lambda: scaled(KNeighborsRegressor(15))),
        ("tree-d1", lambda: plain(DecisionTreeRegressor(max_depth=1, random_state=SEED))),
        ("tree-d4", lambda: plain(DecisionTreeRegressor(max_depth=4, random_state=SEED))),
        ("tree-full", lambda: plain(DecisionTreeRegressor(random_state=SEED))),
        ("rf-20-d3", lambda: plain(RandomForestRegressor(20, max_depth=3, random_state=SEED))),
        ("rf-200", lambda: plain(RandomForestRegressor(200, min_samples_leaf=3, random_state=SEED))),
        ("hgb", lambda: plain(HistGradientBoostingRegressor(random_state=SEED))),
        # the strong end of the field, so a medal means beating well-set-up models
        ("extra-trees-500", lambda: plain(ExtraTreesRegressor(500, min_samples_leaf=2, random_state=SEED))),
        ("hgb-slow", lambda: plain(HistGradientBoostingRegressor(
            learning_rate=0.03, max_iter=500, l2_regularization=1.0, random_state=SEED))),
        ("mlp-64", lambda: scaled(TransformedTargetRegressor(
            MLPRegressor(hidden_layer_sizes=(64,), alpha=1e-2, max_iter=2000, random_state=SEED), transformer=StandardScaler()))),
        ("ridge-cv", lambda: scaled(RidgeCV(alphas=np.logspace(-6, 3, 19)))),
    ]


#: (label, share of features kept, share of training rows used)
SETTINGS = [("all-features", 1.0, 1.0), ("half-features-30pct-rows", 0.5, 0.3), ("2-features-10pct-rows", 0.0, 0.1)]


def reference_field(p: Problem) -> list[tuple[str, pd.DataFrame]]:
    """Every reference solution's submission, in a fixed order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # deliberately small or short fits
        return _reference_field(p)


def _reference_field(p: Problem) -> list[tuple[str, pd.DataFrame]]:
    rng = np.random.RandomState(SEED)
    cols = list(p.X.columns)
    subs = []
    for (name, make), (label, feat_share, row_share) in itertools.product(_models(p.classification), SETTINGS):
        k = max(2, int(round(len(cols) * feat_share))) if feat_share > 0 else min(2, len(cols))
        feats = list(rng.permutation(cols)[:k])
        n = max(10, int(round(len(p.X) * row_share)))
        rows = rng.permutation(len(p.X))[:n]
        Xs, ys = p.X.iloc[rows][feats], p.y.iloc[rows]
        if p.classification and ys.nunique() < 2:
            rows = np.arange(len(p.X))[: max(n, 50)]
            Xs, ys = p.X.iloc[rows][feats], p.y.iloc[rows]
        model = make()
        knn = model.steps[-1][1] if hasattr(model, "steps") else model
        if hasattr(knn, "n_neighbors"):
            knn.n_neighbors = min(knn.n_neighbors, len(ys))  # tiny training fractions
        model.fit(Xs, ys)
        subs.append((f"{name}/{label}", _submission(p, model, p.X_test[feats])))
    return subs


def _submission(p: Problem, model: Any, X_test: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({p.id_col: p.test_ids.to_numpy()})
    if len(p.targets) > 1:
        proba = model.predict_proba(X_test)
        classes = [str(c) for c in model.classes_]
        for t in p.targets:
            match = next((i for i, c in enumerate(classes) if t == c or t.endswith(f"_{c}")), None)
            out[t] = proba[:, match] if match is not None else 0.0
    elif p.proba:
        proba = model.predict_proba(X_test)
        positive = list(model.classes_).index(max(model.classes_)) if len(model.classes_) > 1 else 0
        out[p.targets[0]] = proba[:, positive] if proba.shape[1] > 1 else float(model.classes_[0] == max(p.y))
    else:
        out[p.targets[0]] = model.predict(X_test)
    return out


def calibrate(comp: CompetitionConfig, settings: Settings, write: bool = True,
              lite: Optional[bool] = None) -> pd.DataFrame:
    """Grade the reference field on the full data (`lite=False`), the lite data (`lite=True`),
    or both (`None`, the default); write leaderboard[.lite].csv, checksums[.lite].yaml and the
    `sizes` entry of config.yaml. Returns the leaderboard of the full size (or of the only
    size asked for), best first."""
    sizes = [False, True] if lite is None else [lite]
    if True in sizes and not preparer_takes_lite(comp):
        sizes.remove(True)  # its lite attempts use the full data and leaderboard
    boards = {size: _calibrate_size(comp, settings, size, write) for size in sizes}
    if write:
        _write_sizes(comp, settings, sizes)
    return boards[sizes[0]]


def _calibrate_size(comp: CompetitionConfig, settings: Settings, lite: bool, write: bool) -> pd.DataFrame:
    data = ensure_prepared(comp, settings, lite=lite)
    grade = load_callable(comp.dir, comp.grader["grade_fn"], "grader.grade_fn")
    answers = read_sample(data.answers)
    custom = _custom_field(comp, data.public)  # a competition's own field (e.g. image-to-signal digitizers)
    field = custom if custom is not None else reference_field(load_problem(data.public, comp))
    rows = [{"teamName": name, "score": float(grade(sub, answers))} for name, sub in field]
    lower = bool(comp.lower_is_better)
    board = pd.DataFrame(rows).sort_values("score", ascending=lower, kind="mergesort").reset_index(drop=True)
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    if write:
        board.to_csv(comp.dir / ("leaderboard.lite.csv" if lite else "leaderboard.csv"), index=False, float_format="%.10g")
        write_checksums(comp, data)
    return board


def _custom_field(comp: CompetitionConfig, public: Path) -> Optional[list[tuple[str, pd.DataFrame]]]:
    """The competition's own reference field, when its reference.py defines
    `reference_field(public) -> [(name, submission), ...]`; else None (the generic field)."""
    hook = comp.dir / "reference.py"
    if not hook.is_file() or "def reference_field(" not in hook.read_text():
        return None
    return list(load_callable(comp.dir, "reference:reference_field", "reference")(public))


def dataset_size(public: Path) -> dict[str, float]:
    """What an agent gets: table rows (train + test, or the series/rows files), files, MB."""
    files = [p for p in public.rglob("*") if p.is_file()]
    rows = 0
    for name in ("train.csv", "test.csv"):
        if (public / name).is_file():
            with open(public / name, "rb") as f:
                rows += max(0, sum(1 for _ in f) - 1)
    return {"rows": rows, "files": len(files), "mb": round(sum(p.stat().st_size for p in files) / 1e6, 2)}


def _write_sizes(comp: CompetitionConfig, settings: Settings, sizes: list[bool]) -> None:
    """Record each size in config.yaml (`sizes: {full: {rows, files, mb}, lite: ...}`), so
    `harness list competitions` can show it without preparing anything."""
    cfg_path = comp.dir / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["sizes"] = {("lite" if lite else "full"): dataset_size(ensure_prepared(comp, settings, lite).public) for lite in sizes}
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
