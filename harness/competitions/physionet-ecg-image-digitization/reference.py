"""The reference field of `harness calibrate`: honest digitizers of graded strength, each
graded with the competition's own metric (nothing typed by hand).

- `zeros`: the sample submission (0 mV everywhere; with the offset forgiven it scores about 0 dB);
- `train-mean`: per lead, the mean over the training records of that lead's printed window
  (a template with no information about the test image);
- the classical pipeline of agents/baseline/ecg.py in full, with one or more steps removed
  (page rectification, orientation, local paper normalisation, peak tips) and at coarse
  resolution (the rectified page drawn at 1/2 and 1/3.3 scale).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BASELINE = Path(__file__).resolve().parents[2] / "agents" / "baseline"
FULL = ("rectify", "orient", "relative", "tips")
VARIANTS: list[tuple[str, tuple[str, ...], float]] = [
    ("classical/full", FULL, 1.0),
    ("classical/no-tips", ("rectify", "orient", "relative"), 1.0),
    ("classical/no-paper-normalisation", ("rectify", "orient", "tips"), 1.0),
    ("classical/no-orientation", ("rectify", "relative", "tips"), 1.0),
    ("classical/no-rectification", ("relative", "tips"), 1.0),
    ("classical/half-resolution", FULL, 0.5),
    ("classical/0.3-resolution", FULL, 0.3),
    ("classical/bare", (), 1.0),
]


def _digitize_all(job: tuple[str, dict[str, int], int]) -> list[dict[str, np.ndarray]]:
    sys.path.insert(0, str(BASELINE))
    import ecg  # the baseline agent's digitizer

    path, rows, fs = job
    out = []
    for _, steps, scale in VARIANTS:
        try:
            out.append(ecg.digitize(Path(path), rows, fs, steps, scale))
        except Exception:  # a variant that cannot read an image predicts zeros for it
            out.append({})
    return out


def _long(test: pd.DataFrame, signals: dict[int, dict[str, np.ndarray]]) -> pd.DataFrame:
    parts = []
    for base, g in test.groupby("id", sort=False):
        for lead, n in zip(g["lead"].astype(str), g["number_of_rows"].astype(int), strict=True):
            v = np.nan_to_num(np.asarray(signals.get(base, {}).get(lead, np.zeros(n)), dtype=np.float64)[:n])
            v = np.pad(v, (0, n - len(v)))
            parts.append(pd.DataFrame({"id": [f"{base}_{i}_{lead}" for i in range(n)], "value": v}))
    return pd.concat(parts, ignore_index=True)


def _train_mean(public: Path, test: pd.DataFrame) -> dict[int, dict[str, np.ndarray]]:
    """Per lead, the mean over training records of its window, resampled to each test length."""
    train = pd.read_csv(public / "train.csv")
    grid = np.linspace(0, 1, 500)
    sums: dict[str, np.ndarray] = {}
    for rid in train["id"]:
        sig = pd.read_csv(public / "train" / str(rid) / f"{rid}.csv")
        for lead in sig.columns:
            v = sig[lead].dropna().to_numpy()
            if len(v) > 1:
                sums[lead] = sums.get(lead, np.zeros(len(grid))) + np.interp(grid, np.linspace(0, 1, len(v)), v)
    mean = {k: v / len(train) for k, v in sums.items()}
    out: dict[int, dict[str, np.ndarray]] = {}
    for base, g in test.groupby("id", sort=False):
        out[base] = {lead: np.interp(np.linspace(0, 1, n), grid, mean.get(lead, np.zeros(len(grid))))
                     for lead, n in zip(g["lead"].astype(str), g["number_of_rows"].astype(int), strict=True)}
    return out


def reference_field(public: Path) -> list[tuple[str, pd.DataFrame]]:
    """(name, submission) of every reference digitizer, in a fixed order."""
    test = pd.read_csv(public / "test.csv")
    jobs: list[tuple[str, dict[str, int], int]] = []
    ids = list(dict.fromkeys(test["id"].tolist()))
    for base in ids:
        g = test[test["id"] == base]
        jobs.append((str(public / "test" / f"{base}.png"), dict(zip(g["lead"].astype(str), g["number_of_rows"].astype(int), strict=True)),
                     int(g["fs"].iloc[0])))
    workers = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, 8))
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results: list[Any] = list(pool.map(_digitize_all, jobs, chunksize=1))
    else:
        results = [_digitize_all(j) for j in jobs]
    field = [("zeros", _long(test, {})), ("train-mean", _long(test, _train_mean(public, test)))]
    for k, (name, _, _) in enumerate(VARIANTS):
        field.append((name, _long(test, {base: res[k] for base, res in zip(ids, results, strict=True)})))
    return field
