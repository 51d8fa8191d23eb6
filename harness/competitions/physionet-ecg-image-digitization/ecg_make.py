"""One record's files, made in a worker process: its signals, its images as PNG bytes, and
every parameter drawn. Deterministic in (seed, image types): the same bytes on any worker."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
import pandas as pd

import ecg_distort
import ecg_render
import ecg_signals

LEADS = ecg_signals.LEADS


def windows(fs: int) -> dict[str, tuple[int, int]]:
    """Each lead's [start, stop) sample rows: lead II all 10*fs, the others int(2.5*fs) from int(c*2.5*fs)."""
    n, short = int(ecg_signals.SECONDS * fs), int(ecg_render.COLUMN_S * fs)
    out = {}
    for lead in LEADS:
        if lead == ecg_render.RHYTHM_LEAD:
            out[lead] = (0, n)
        else:
            start = int(ecg_render.COLUMN_OF[lead] * ecg_render.COLUMN_S * fs)
            out[lead] = (start, start + short)
    return out


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG of an 8-bit RGB (H, W, 3) or gray (H, W) array (zlib level 1: fast; no metadata)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def pixel_sha256(png: bytes) -> str:
    """sha256 (hex) of what a PNG shows: its mode, size and decoded pixel bytes, not its
    compressed bytes (those depend on the zlib build Pillow bundles)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        im.load()
        head = f"{im.mode}|{im.width}|{im.height}|".encode()
        return hashlib.sha256(head + im.tobytes()).hexdigest()


def table_sha256(frame: pd.DataFrame) -> str:
    """sha256 (hex) of a table's column names and values (numbers as float64, the rest as text),
    independent of the Parquet writer's version, compression and pandas' dtypes."""
    h = hashlib.sha256()
    for name in frame.columns:
        col = frame[name]
        h.update(f"{name}\0{len(col)}\0".encode())
        if pd.api.types.is_numeric_dtype(col):
            h.update(np.ascontiguousarray(col.to_numpy(dtype=np.float64)).astype("<f8").tobytes())
        else:
            h.update("\0".join(col.astype(str)).encode())
    return h.hexdigest()


def make_record(job: dict[str, Any]) -> dict[str, Any]:
    """job: {seed, types}. Returns fs, signals (10*fs, 12), pngs {type: bytes}, params."""
    seed, types = int(job["seed"]), list(job["types"])
    rec = ecg_signals.synthesize(seed)
    pngs, params = {}, {}
    for k, kind in enumerate(types):
        rng = np.random.default_rng([seed, k, int(kind)])
        opts = ecg_distort.render_options(kind, rng)
        page = ecg_render.render(rec.signals, rec.fs, LEADS, **opts)
        pixels, drawn = ecg_distort.distort(page, kind, rng)
        pngs[kind] = png_bytes(pixels)
        params[kind] = {"render": opts, "distortion": drawn, "size_px": [int(pixels.shape[1]), int(pixels.shape[0])]}
    return {"fs": rec.fs, "signals": rec.signals, "pngs": pngs, "params": params, "signal_params": rec.params}


def train_csv(signals: np.ndarray, fs: int) -> bytes:
    """The Kaggle train/{id}/{id}.csv: 12 columns, lead II full, every other lead only in its window."""
    frame = pd.DataFrame(np.nan, index=np.arange(signals.shape[0]), columns=LEADS)
    for j, (lead, (a, b)) in enumerate(windows(fs).items()):
        frame.iloc[a:b, j] = signals[a:b, LEADS.index(lead)]
    return frame.to_csv(index=False, float_format="%.5f", lineterminator="\n").encode()


def run_jobs(jobs_file: str, out_dir: str) -> None:
    """Worker entry point: make every job in `jobs_file` (JSON list) and write, per job index k,
    `k.npy` (signals), `k.json` (fs, params, signal params) and `k-{type}.png` into `out_dir`."""
    import json
    from pathlib import Path

    out = Path(out_dir)
    for k, job in json.loads(Path(jobs_file).read_text()):
        rec = make_record(job)
        for kind, data in rec["pngs"].items():
            (out / f"{k}-{kind}.png").write_bytes(data)
        np.save(out / f"{k}.npy", rec["signals"])
        (out / f"{k}.json").write_text(json.dumps({"fs": rec["fs"], "params": rec["params"], "signal_params": rec["signal_params"]}))
