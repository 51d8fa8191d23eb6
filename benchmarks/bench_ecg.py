"""The ECG image digitization competition, measured: prepare time and size of each split,
and on the test set the classical baseline's score per image type and overall, the dummy's
(the sample submission), and the leaderboard median they are judged against.

    python benchmarks/bench_ecg.py [--lite] [--workers N]

Uses the data cache ($HARNESS_DATA_DIR): a split already prepared there is not timed again
(its stored time is printed when this script prepared it before), so run it on a clean
cache to time preparation. The digitizer runs on `--workers` processes (default: one per core),
each image as the baseline agent's `ecg.solve` does it, and the submission is graded as a run's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
CID = "physionet-ecg-image-digitization"


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _digitize(job: tuple[Path, dict[str, int], int]) -> tuple[dict[str, list[float]], float]:
    """One test image through the baseline's digitizer: (values per lead, CPU seconds)."""
    import ecg

    t0 = time.process_time()
    try:
        sig = ecg.digitize(*job)
    except Exception:  # as ecg.solve: an unreadable image is predicted as zeros
        sig = {}
    return {k: v.tolist() for k, v in sig.items()}, time.process_time() - t0


def solve_parallel(public: Path, out: Path, workers: int) -> tuple[pd.DataFrame, float]:
    """The baseline's submission for the test set in `public`, the images spread over `workers`
    processes (the same values as ecg.solve); returns it with the total CPU seconds of digitizing."""
    import numpy as np

    test = pd.read_csv(public / "test.csv")
    groups = list(test.groupby("id", sort=False))
    jobs = [(public / "test" / f"{base}.png", dict(zip(g["lead"].astype(str), g["number_of_rows"].astype(int), strict=True)),
             int(g["fs"].iloc[0])) for base, g in groups]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_digitize, jobs))
    parts = []
    for (base, _), (_, rows, _), (sig, _) in zip(groups, jobs, results, strict=True):
        for lead, n in rows.items():
            v = np.asarray(sig.get(lead, np.zeros(n)), dtype=np.float64)
            parts.append(pd.DataFrame({"id": [f"{base}_{i}_{lead}" for i in range(n)], "value": np.nan_to_num(v[:n])}))
    sub = pd.concat(parts, ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    sub.to_parquet(out / "submission.parquet", index=False)
    return sub, sum(cpu for _, cpu in results)


sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "harness" / "agents" / "baseline"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lite", action="store_true", help="score the lite test set instead of the full one")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="digitizer processes (default: one per core)")
    args = ap.parse_args()
    from harness.data import ensure_prepared, prepared_data
    from harness.grading import grade_submission
    from harness.registry import load_registry
    from harness.spec import Settings

    settings = Settings.from_env()
    comp = load_registry(settings).competition(CID)
    sys.path.insert(0, str(comp.dir))
    import ecg_metric

    timings = settings.data_dir / CID / "bench_prepare_seconds.json"
    stored = json.loads(timings.read_text()) if timings.is_file() else {}
    print("| split | prepare (s) | size (MB) | train records | test images |")
    print("|---|---|---|---|---|")
    for lite in (True, False):
        name = "lite" if lite else "full"
        cached = prepared_data(comp, settings, lite) is not None
        t0 = time.perf_counter()
        data = ensure_prepared(comp, settings, lite)
        if not cached:
            stored[name] = round(time.perf_counter() - t0, 1)
            timings.write_text(json.dumps(stored))
        n_train = len(pd.read_csv(data.public / "train.csv"))
        n_test = pd.read_csv(data.public / "test.csv")["id"].nunique()
        seconds = stored.get(name, "cached")
        print(f"| {name} | {seconds} | {_size_mb(data.public) + _size_mb(data.private):.0f} | {n_train} | {n_test} |")

    data = ensure_prepared(comp, settings, args.lite)
    answers = pd.read_parquet(data.answers)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sub, cpu = solve_parallel(data.public, Path(tmp), args.workers)
        seconds = time.perf_counter() - t0
        report = grade_submission(comp, Path(tmp) / "submission.parquet", data.answers, data.sample_submission, lite=args.lite)
    dummy = grade_submission(comp, data.sample_submission, data.answers, data.sample_submission, lite=args.lite)
    n_img = answers["id"].str.split("_").str[0].nunique()
    print(f"\nbaseline on the {'lite' if args.lite else 'full'} test set: {n_img} images in {seconds:.0f} s wall on "
          f"{args.workers} process(es), {cpu / n_img:.1f} s of CPU per image\n")
    print("| image type | images | baseline (dB) | dummy (dB) |")
    print("|---|---|---|---|")
    types = answers.assign(image=answers["id"].str.split("_").str[0]).drop_duplicates("image")["type"].value_counts()
    for t in sorted(types.index):
        key = f"type:{t}"
        print(f"| {t} | {types[t]} | {report.details.get(key, float('nan')):.2f} | {dummy.details.get(key, float('nan')):.2f} |")
    print(f"| **overall** | {n_img} | **{report.score:.2f}** | **{dummy.score:.2f}** |")
    print(f"\nleaderboard median {report.median_threshold:.2f} dB: baseline above it: {report.above_median}, "
          f"dummy above it: {dummy.above_median}")
    leads = {k[5:]: v for k, v in report.details.items() if k.startswith("lead:")}
    print("per lead (baseline):", ", ".join(f"{k} {v:.1f}" for k, v in leads.items()))
    assert abs(ecg_metric.score(sub, answers) - float(report.score or 0)) <= 5e-6  # the grader rounds to 5 decimals


if __name__ == "__main__":
    main()
