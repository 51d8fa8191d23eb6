"""Kaggle's modified SNR in dB (see ecg_metric.py), higher is better, plus a breakdown of the
same score by image type ("type:0005") and by lead ("lead:V1") for `harness report`.

The answers (private/answers.parquet) are the long form of the test signals: id
(`{base_id}_{row_id}_{lead}`), fs, value (mV), and type (the image's Kaggle suffix)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecg_metric import InvalidSubmissionError, LEADS, image_powers, merged_frame, score_powers, snr_ratio, to_db

__all__ = ["grade", "grade_details", "InvalidSubmissionError"]

_cache: dict[tuple[int, int], pd.DataFrame] = {}


def _powers(submission: pd.DataFrame, answers: pd.DataFrame) -> pd.DataFrame:
    """Signal and noise power per image and lead; the last result is kept, so the breakdown
    that follows a grade reuses its alignments."""
    key = (id(submission), id(answers))
    if key not in _cache:
        _cache.clear()
        _cache[key] = image_powers(merged_frame(submission, answers))
    return _cache[key]


def grade(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    """The competition score in dB: max(10 log10(mean over test images of min(signal/noise, 384)), -384)."""
    return score_powers(_powers(submission, answers))


def grade_details(submission: pd.DataFrame, answers: pd.DataFrame) -> dict[str, float]:
    """The score in dB restricted to each image type (`type:<suffix>`, over the images of that
    type) and to each lead (`lead:<name>`, every image's ratio from that lead alone)."""
    p = _powers(submission, answers)
    out: dict[str, float] = {}
    if "type" in answers.columns:
        images = [i.split("_", 1)[0] for i in answers["id"].astype(str).to_numpy(dtype=object)]
        types = answers.assign(image=images).drop_duplicates("image")
        kind = dict(zip(types["image"], types["type"].astype(str).str.zfill(4), strict=True))
        tagged = p.assign(type=p["image"].map(kind))
        for t, g in tagged.groupby("type", sort=True):
            out[f"type:{t}"] = score_powers(g)
    for lead in LEADS:
        g = p[p["lead"] == lead]
        out[f"lead:{lead}"] = to_db([snr_ratio(s, n) for s, n in zip(g["signal"], g["noise"], strict=True)]) if len(g) else float(np.nan)
    return out
