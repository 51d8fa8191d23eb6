"""The PhysioNet "Digitization of ECG Images" metric (Kaggle), re-implemented from its
published description: a modified signal-to-noise ratio in dB after forgiving small
time shifts and any vertical offset.

Per image and lead, the prediction is aligned to the truth: the lag that maximises the
cross-correlation of the two mean-removed series within +-0.2 s (`MAX_TIME_SHIFT * fs`
samples; ties go to the smallest |lag|) shifts it, the samples shifted out are NaN padding,
and the constant offset that minimises the squared error is removed (least squares, over the
overlapping samples). The padding then counts as 0. Signal power sum(truth^2) and noise power
sum((truth - aligned)^2) are summed over the 12 leads; the image's ratio is
min(signal / noise, PERFECT_SCORE) (PERFECT_SCORE if noise is 0, 0 if signal is 0), and the
score is max(10 log10(mean ratio over images), -PERFECT_SCORE). Higher is better.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd
from scipy import signal as sps

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
PERFECT_SCORE = 384.0  # Kaggle's cap; 1e6 is the documented alternative (`perfect=`)
MAX_TIME_SHIFT = 0.2  # seconds
LONG_LEAD = "II"
LONG_SECONDS, SHORT_SECONDS = 10.0, 2.5


class InvalidSubmissionError(ValueError):
    """The submission cannot be scored; the message is the one-line reason."""


def align_signals(label: np.ndarray, pred: np.ndarray, max_shift: float = math.inf) -> np.ndarray:
    """`pred` shifted in time (by at most `max_shift` samples) and offset vertically to best
    match `label` (both 1-D, equal length, finite). Returns float64 of len(label) with NaN
    where the shift moved samples out."""
    label = np.asarray(label, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if label.ndim != 1 or pred.ndim != 1:
        raise ValueError("align_signals takes 1-D arrays")
    if not (np.isfinite(label).all() and np.isfinite(pred).all()):
        raise InvalidSubmissionError("values must be finite (no NaN or inf)")
    n_label, n_pred = len(label), len(pred)
    corr = sps.correlate(label - label.mean(), pred - pred.mean(), mode="full")
    lags = np.arange(-n_pred + 1, n_label)
    window = (lags >= -max_shift) & (lags <= max_shift)
    best_value = np.max(corr[window])
    candidates = np.flatnonzero(window & (corr == best_value))
    lag = int(lags[candidates[np.argmin(np.abs(lags[candidates]))]])
    start = max(lag, 0)
    piece = pred[max(-lag, 0): min(n_label - lag, n_pred)]
    aligned = np.concatenate([np.full(start, np.nan), piece, np.full(max(n_label - start - len(piece), 0), np.nan)])
    both = np.isfinite(aligned)
    if both.any():
        aligned = aligned - np.mean(aligned[both] - label[both])  # the least-squares vertical offset
    return aligned


def powers(label: np.ndarray, aligned: np.ndarray) -> tuple[float, float]:
    """(signal power sum(label^2), noise power sum((label - aligned)^2)), NaN padding as 0."""
    label = np.asarray(label, dtype=np.float64)
    pred = np.nan_to_num(np.asarray(aligned, dtype=np.float64), nan=0.0)
    return float(np.sum(label ** 2)), float(np.sum((label - pred) ** 2))


def snr_ratio(signal_power: float, noise_power: float, perfect: float = PERFECT_SCORE) -> float:
    """One image's capped ratio signal/noise (not in dB)."""
    if noise_power == 0:
        return perfect
    if signal_power == 0:
        return 0.0
    return min(signal_power / noise_power, perfect)


def to_db(ratios: Iterable[float], perfect: float = PERFECT_SCORE) -> float:
    """The score of a set of image ratios: max(10 log10(mean), -perfect); -perfect for a mean of 0."""
    values = list(ratios)
    mean = float(np.mean(values)) if values else 0.0
    return -perfect if mean <= 0 else max(10.0 * math.log10(mean), -perfect)


def split_ids(ids: pd.Series) -> pd.DataFrame:
    """`{base_id}_{row_id}_{lead}` ids as columns image, row (int), lead."""
    parts = [i.rsplit("_", 2) for i in _as_str(ids)]  # plain str methods: pandas' Arrow strings are slower here
    bad = next((ids.iloc[k] for k, p in enumerate(parts) if len(p) != 3), None)
    if bad is not None:
        raise InvalidSubmissionError(f"id {bad!r} is not of the form {{base_id}}_{{row_id}}_{{lead}}")
    image, row, lead = zip(*parts, strict=True) if parts else ((), (), ())
    rows = pd.to_numeric(pd.Series(row, dtype=object), errors="coerce")
    return pd.DataFrame({"image": np.array(image, dtype=object), "row": rows.to_numpy(),
                         "lead": np.array(lead, dtype=object)})


def _as_str(values: pd.Series) -> np.ndarray:
    """The values as an object array of Python str (ids are compared and split as text)."""
    return values.astype(str).to_numpy(dtype=object)


def merged_frame(submission: pd.DataFrame, solution: pd.DataFrame) -> pd.DataFrame:
    """The solution (id, fs, value) joined with the submission's values by id, checked:
    columns present, no NaN/inf, no missing or unknown or duplicated ids, lead II of 10*fs rows
    (as Kaggle checks it: int(rows / 10) == fs).
    Columns: image, row, lead, fs, truth, pred; sorted by image, lead, row."""
    for col in ("id", "value"):
        if col not in submission.columns:
            raise InvalidSubmissionError(f"the submission has no {col!r} column; expected columns 'id', 'value'")
    sub_ids = pd.Index(_as_str(submission["id"]))
    if sub_ids.has_duplicates:
        dup = sub_ids[sub_ids.duplicated()]
        raise InvalidSubmissionError(f"{len(dup)} duplicated id value(s), e.g. {dup[0]!r}")
    values = pd.to_numeric(submission["value"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        first = submission["value"].iloc[int(np.flatnonzero(np.isnan(values))[0])]
        raise InvalidSubmissionError(f"column 'value' has {int(np.isnan(values).sum())} NaN or non-numeric value(s), "
                                     f"e.g. {first!r}")
    if not np.isfinite(values).all():
        raise InvalidSubmissionError(f"column 'value' has {int((~np.isfinite(values)).sum())} infinite value(s)")
    sol_ids = _as_str(solution["id"])
    where = sub_ids.get_indexer(sol_ids)  # each solution id's row in the submission, -1 when absent
    missing = where < 0
    if missing.any():
        raise InvalidSubmissionError(f"{int(missing.sum())} id value(s) missing, e.g. {sol_ids[missing][0]!r}")
    if len(sub_ids) != len(sol_ids):
        unknown = sub_ids[~sub_ids.isin(sol_ids)]
        raise InvalidSubmissionError(f"{len(unknown)} unknown id value(s), e.g. {unknown[0]!r}")
    frame = split_ids(pd.Series(sol_ids, dtype=object))
    frame["fs"] = solution["fs"].to_numpy()
    frame["truth"] = solution["value"].to_numpy(dtype=np.float64)
    frame["pred"] = values[where]
    frame = frame.sort_values(["image", "lead", "row"], kind="mergesort").reset_index(drop=True)
    long = frame[frame["lead"] == LONG_LEAD].groupby("image", sort=False).agg(n=("row", "size"), fs=("fs", "first"))
    # Kaggle's check: int(rows / 10) must equal fs (so 10*fs rows, as test.csv's number_of_rows says)
    wrong = long[(long["n"] // int(LONG_SECONDS)) != long["fs"].astype(int)]
    if len(wrong):
        img = wrong.index[0]
        raise InvalidSubmissionError(f"lead II of image {img!r} has {int(wrong['n'].iloc[0])} rows; "
                                     f"it must have 10*fs = {int(LONG_SECONDS * wrong['fs'].iloc[0])}")
    return frame


def image_powers(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per image and lead of a `merged_frame`: signal and noise power after alignment."""
    rows = []
    for (image, lead), g in frame.groupby(["image", "lead"], sort=True):
        fs = float(g["fs"].iloc[0])
        aligned = align_signals(g["truth"].to_numpy(), g["pred"].to_numpy(), int(fs * MAX_TIME_SHIFT))
        s, n = powers(g["truth"].to_numpy(), aligned)
        rows.append((image, lead, s, n))
    return pd.DataFrame(rows, columns=["image", "lead", "signal", "noise"])


def score_powers(p: pd.DataFrame, perfect: float = PERFECT_SCORE) -> float:
    """The score in dB of per-(image, lead) powers: summed over leads per image, then `to_db`."""
    per_image = p.groupby("image", sort=True)[["signal", "noise"]].sum()
    return to_db([snr_ratio(s, n, perfect) for s, n in zip(per_image["signal"], per_image["noise"], strict=True)], perfect)


def score(submission: pd.DataFrame, solution: pd.DataFrame, perfect: float = PERFECT_SCORE) -> float:
    """The competition score in dB of a long-form submission (id, value) against the solution
    (id, fs, value). Raises InvalidSubmissionError with the reason for a malformed submission."""
    return score_powers(image_powers(merged_frame(submission, solution)), perfect)
