"""PhysioNet "Digitization of ECG Images", generated offline from a seed.

Signals come from a vectorcardiogram model (ecg_signals.py), pages are drawn with
ECG-Image-Kit's geometry (ecg_render.py) and distorted into Kaggle's image types
(ecg_distort.py). Records are made in parallel over the available cores (one worker
process per core, each record from its own seed, so the bytes do not depend on scheduling).

Full: 200 training records (each a clean 0001 image plus one other type) and 100 test
images (types in a fixed rotation). Lite: 30 training records (one image each, the types
in turn), 20 test images.

`private/content.json` holds the sha256 of what every PNG and Parquet file contains (decoded
pixels; column values). checksums.yaml pins that file and the text files, not the PNG and
Parquet bytes (config.yaml `checksums_unpinned`): those change with the zlib build Pillow
bundles and with the Parquet writer's version while the content stays the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the ecg_* helpers, also in spawned workers

import ecg_distort  # noqa: E402
import ecg_make  # noqa: E402

SEED = 20251
SIZES = {False: (200, 100), True: (30, 20)}  # (train records, test images)
TEST_MIX = ecg_distort.TYPES  # test image i has type TEST_MIX[i % 9]


def plan(lite: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train jobs, test jobs): id, seed and image types of each record."""
    n_train, n_test = SIZES[lite]
    rng = np.random.default_rng(SEED)
    ids = rng.choice(np.arange(10**6, 10**9), size=n_train + n_test, replace=False)
    seeds = rng.integers(0, 2**31 - 1, size=n_train + n_test)
    others = ecg_distort.TYPES[1:]
    # full: a clean image and one other type per record; lite: one image per record, the types in turn
    types = (lambda i: ["0001", others[i % len(others)]]) if not lite else (lambda i: [ecg_distort.TYPES[i % 9]])
    train = [{"id": int(ids[i]), "seed": int(seeds[i]), "types": types(i)} for i in range(n_train)]
    test = [{"id": int(ids[n_train + i]), "seed": int(seeds[n_train + i]), "types": [TEST_MIX[i % len(TEST_MIX)]]}
            for i in range(n_test)]
    return train, test


def _run(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """make_record of every job, on one fresh interpreter per core (plain subprocesses, so nothing of
    the caller is re-imported or forked: safe under Ray workers, pytest and scripts alike)."""
    workers = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8))
    if workers == 1 or len(jobs) < 4:
        return [ecg_make.make_record(j) for j in jobs]
    here = str(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory(prefix="ecg-prepare-") as tmp:
        procs = []
        for w in range(workers):
            jobs_file = Path(tmp) / f"jobs-{w}.json"
            jobs_file.write_text(json.dumps([(k, jobs[k]) for k in range(w, len(jobs), workers)]))
            code = f"import sys; sys.path.insert(0, {here!r}); import ecg_make; ecg_make.run_jobs({str(jobs_file)!r}, {tmp!r})"
            procs.append(subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True))
        errors = [p.communicate()[1] for p in procs]
        for p, err in zip(procs, errors, strict=True):
            if p.returncode != 0:
                raise RuntimeError(f"an ECG generator worker failed: {err.strip().splitlines()[-1] if err.strip() else p.returncode}")
        out = []
        for k, job in enumerate(jobs):
            meta = json.loads((Path(tmp) / f"{k}.json").read_text())
            out.append({"fs": meta["fs"], "signals": np.load(Path(tmp) / f"{k}.npy"), "params": meta["params"],
                        "signal_params": meta["signal_params"],
                        "pngs": {kind: (Path(tmp) / f"{k}-{kind}.png").read_bytes() for kind in job["types"]}})
        return out


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, compression="zstd")


def prepare(raw: Path, public: Path, private: Path, lite: bool = False) -> None:
    train_jobs, test_jobs = plan(lite)
    made = _run(train_jobs + test_jobs)
    train_made, test_made = made[: len(train_jobs)], made[len(train_jobs):]
    meta: dict[str, Any] = {"train": {}, "test": {}}

    (public / "train").mkdir()
    rows = []
    for job, rec in zip(train_jobs, train_made, strict=True):
        folder = public / "train" / str(job["id"])
        folder.mkdir()
        for kind, data in rec["pngs"].items():
            (folder / f"{job['id']}-{kind}.png").write_bytes(data)
        (folder / f"{job['id']}.csv").write_bytes(ecg_make.train_csv(rec["signals"], rec["fs"]))
        rows.append({"id": job["id"], "fs": rec["fs"], "sig_len": rec["signals"].shape[0]})
        meta["train"][str(job["id"])] = {"seed": job["seed"], "signal": rec["signal_params"], "images": rec["params"]}
    pd.DataFrame(rows).to_csv(public / "train.csv", index=False)

    (public / "test").mkdir()
    test_rows, answer_parts = [], []
    for job, rec in zip(test_jobs, test_made, strict=True):
        kind = job["types"][0]
        (public / "test" / f"{job['id']}.png").write_bytes(rec["pngs"][kind])
        fs = rec["fs"]
        for lead, (a, b) in ecg_make.windows(fs).items():
            test_rows.append({"id": job["id"], "lead": lead, "fs": fs, "number_of_rows": b - a})
            values = rec["signals"][a:b, ecg_make.LEADS.index(lead)]
            answer_parts.append(pd.DataFrame({"id": [f"{job['id']}_{r}_{lead}" for r in range(b - a)],
                                              "fs": fs, "value": values, "type": kind}))
        meta["test"][str(job["id"])] = {"seed": job["seed"], "type": kind, "signal": rec["signal_params"],
                                        "image": rec["params"][kind]}
    pd.DataFrame(test_rows).to_csv(public / "test.csv", index=False)
    answers = pd.concat(answer_parts, ignore_index=True)
    _write_parquet(answers[["id", "fs", "value", "type"]], private / "answers.parquet")
    _write_parquet(answers[["id"]].assign(value=0.0), public / "sample_submission.parquet")
    (private / "images.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    (private / "content.json").write_text(json.dumps(content_manifest(public, private), indent=1, sort_keys=True))


def content_manifest(public: Path, private: Path) -> dict[str, str]:
    """{"public/test/1.png": sha256, ...}: ecg_make.pixel_sha256 of every PNG and
    ecg_make.table_sha256 of every Parquet file under `public` and `private`."""
    out = {}
    for side, root in (("public", public), ("private", private)):
        for p in sorted(root.rglob("*")):
            rel = f"{side}/{p.relative_to(root).as_posix()}"
            if p.suffix == ".png" and p.is_file():
                out[rel] = ecg_make.pixel_sha256(p.read_bytes())
            elif p.suffix == ".parquet" and p.is_file():
                out[rel] = ecg_make.table_sha256(pd.read_parquet(p))
    return out
