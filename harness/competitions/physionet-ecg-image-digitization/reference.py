"""The reference field of `harness calibrate`: honest digitizers of graded strength, each
graded with the competition's own metric (nothing typed by hand).

- `zeros`: the sample submission (0 mV everywhere; with the offset forgiven it scores about 0 dB);
- `train-mean`: per lead, the mean over the training records of that lead's printed window
  (a template with no information about the test image);
- the classical pipeline of agents/baseline/ecg.py in full, without peak tips, without page
  rectification, at coarse resolution (the rectified page drawn at 1/2 and 0.3 scale), and with
  every step removed at 1/2 resolution.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

BASELINE = Path(__file__).resolve().parents[2] / "agents" / "baseline"
FULL = ("rectify", "orient", "relative", "degrid", "blobs", "tips")
VARIANTS: list[tuple[str, tuple[str, ...], float]] = [
    ("classical/full", FULL, 1.0),
    ("classical/no-tips", ("rectify", "orient", "relative", "degrid", "blobs"), 1.0),
    ("classical/no-rectification", ("relative", "degrid", "blobs", "tips"), 1.0),
    ("classical/half-resolution", FULL, 0.5),
    ("classical/0.3-resolution", FULL, 0.3),
    ("classical/bare-0.5-resolution", (), 0.5),
]


def run_jobs(jobs_file: str, out_dir: str) -> None:
    """Worker entry point: every variant on each (k, path, rows, fs) job in `jobs_file`, written
    as `out_dir/k.npz` (arrays named `<variant index>:<lead>`)."""
    import json

    sys.path.insert(0, str(BASELINE))
    import ecg  # the baseline agent's digitizer

    for k, path, rows, fs in json.loads(Path(jobs_file).read_text()):
        arrays: dict[str, np.ndarray] = {}
        for v, (_, steps, scale) in enumerate(VARIANTS):
            try:
                sig = ecg.digitize(Path(path), rows, fs, steps, scale)
            except Exception:  # a variant that cannot read an image predicts zeros for it
                sig = {}
            arrays.update({f"{v}:{lead}": val for lead, val in sig.items()})
        np.savez(Path(out_dir) / f"{k}.npz", **arrays)


def _digitize_all(jobs: list[tuple[str, dict[str, int], int]]) -> list[list[dict[str, np.ndarray]]]:
    """Per job, per variant, the digitized leads; one plain subprocess per core."""
    import json
    import subprocess
    import tempfile

    workers = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, 8))
    here = str(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory(prefix="ecg-reference-") as tmp:
        procs = []
        for w in range(workers):
            jf = Path(tmp) / f"jobs-{w}.json"
            jf.write_text(json.dumps([(k, *jobs[k]) for k in range(w, len(jobs), workers)]))
            code = f"import sys; sys.path.insert(0, {here!r}); import reference; reference.run_jobs({str(jf)!r}, {tmp!r})"
            procs.append(subprocess.Popen([sys.executable, "-c", code]))
        for p in procs:
            if p.wait() != 0:
                raise RuntimeError("a reference digitizer worker failed")
        out = []
        for k in range(len(jobs)):
            with np.load(Path(tmp) / f"{k}.npz") as z:
                per = [dict[str, np.ndarray]() for _ in VARIANTS]
                for name in z.files:
                    v, lead = name.split(":", 1)
                    per[int(v)][lead] = z[name]
            out.append(per)
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
    results = _digitize_all(jobs)
    field = [("zeros", _long(test, {})), ("train-mean", _long(test, _train_mean(public, test)))]
    for k, (name, _, _) in enumerate(VARIANTS):
        field.append((name, _long(test, {base: res[k] for base, res in zip(ids, results, strict=True)})))
    return field
