"""Helpers shared by the built-in competitions' prepare.py, grade.py and reference.py files.

Every built-in competition is made from data that ships inside a PyPI package, so
preparing one needs no network. Package data is located with `package_data`
(without importing the package, which may be heavy or pinned to other versions),
and everything written is byte-for-byte deterministic so checksums.yaml can pin it.
"""

from __future__ import annotations

import importlib.util
import struct
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from harness.grading import InvalidSubmissionError, align_to, check_submission_format

__all__ = [
    "InvalidSubmissionError", "aligned_columns", "split_and_write", "lite_subset", "split_ids",
    "package_data", "write_png_gray", "read_png_gray", "read_ts", "write_series_split",
    "series_features", "series_reference_features", "probabilities", "class_labels",
]


# ---------------------------------------------------------------- locating package data


def package_data(package: str, *parts: str) -> Path:
    """The path of a data file that ships inside an installed package, found without
    importing it. Raises FileNotFoundError naming the package to install."""
    spec = importlib.util.find_spec(package)
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc).joinpath(*parts)
        if path.exists():
            return path
    raise FileNotFoundError(f"{'/'.join(parts)} not found in package {package!r}; `pip install {package}` provides it")


# ---------------------------------------------------------------- splitting tables


def lite_subset(frame: pd.DataFrame, rows: int, seed: int, stratify: Optional[str] = None) -> pd.DataFrame:
    """A deterministic subset of `rows` rows (all of them if there are fewer), keeping the
    class balance of `stratify` when given. The source order is kept."""
    if rows >= len(frame):
        return frame
    rng = np.random.RandomState(seed)
    if stratify is None:
        keep = np.sort(rng.permutation(len(frame))[:rows])
    else:
        labels = frame[stratify].to_numpy()
        keep_parts = []
        for cls in sorted(pd.unique(labels), key=str):
            idx = np.flatnonzero(labels == cls)
            n = max(1, int(round(len(idx) * rows / len(frame))))
            keep_parts.append(rng.permutation(idx)[:n])
        keep = np.sort(np.concatenate(keep_parts))
    return frame.iloc[keep].reset_index(drop=True)


def split_ids(n: int, labels: Optional[np.ndarray], test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, test_mask): a fixed-seed shuffle of range(n) and which shuffled rows are test.
    With `labels`, the test share is taken from each class."""
    rng = np.random.RandomState(seed)
    order = rng.permutation(n)
    if labels is not None:
        shuffled = np.asarray(labels)[order]
        test_mask = np.zeros(n, dtype=bool)
        for cls in sorted(pd.unique(shuffled), key=str):
            idx = np.flatnonzero(shuffled == cls)
            test_mask[idx[: int(round(len(idx) * test_fraction))]] = True
    else:
        test_mask = np.arange(n) < int(round(n * test_fraction))
    return order, test_mask


def split_and_write(frame: pd.DataFrame, target: str | list[str], public: Path, private: Path, *,
                    test_fraction: float = 0.3, seed: int = 0, sample_value: object = 0.0,
                    stratify: bool = False, answer_columns: Optional[pd.DataFrame] = None) -> None:
    """Shuffle `frame` with a fixed seed, hold out a test set, and write mlebench's
    files: public train.csv / test.csv / sample_submission.csv, private answers.csv.
    Ids are the shuffled row numbers, so they reveal nothing about the source order.

    `answer_columns` (one row per row of `frame`) replaces the target in answers.csv and
    sample_submission.csv, e.g. one-hot class columns for a log-loss competition."""
    targets = [target] if isinstance(target, str) else list(target)
    frame = frame.reset_index(drop=True)
    order, test_mask = split_ids(len(frame), frame[targets[0]].to_numpy() if stratify else None, test_fraction, seed)
    shuffled = frame.iloc[order].reset_index(drop=True)
    shuffled.insert(0, "id", np.arange(len(shuffled)))
    train, test = shuffled[~test_mask], shuffled[test_mask]
    train.to_csv(public / "train.csv", index=False)
    test.drop(columns=targets).to_csv(public / "test.csv", index=False)
    if answer_columns is None:
        answers = test[["id", *targets]]
    else:
        extra = answer_columns.reset_index(drop=True).iloc[order].reset_index(drop=True)[test_mask]
        answers = pd.concat([test[["id"]], extra], axis=1)
    sample = answers[["id"]].copy()
    for col in answers.columns[1:]:
        sample[col] = sample_value
    sample.to_csv(public / "sample_submission.csv", index=False)
    answers.to_csv(private / "answers.csv", index=False)


# ---------------------------------------------------------------- images


def write_png_gray(path: Path, pixels: np.ndarray) -> None:
    """Write an 8-bit grayscale PNG. Stored (level-0) deflate blocks, so the bytes are the
    same with any zlib build and checksums stay valid across machines."""
    img = np.asarray(pixels, dtype=np.uint8)
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))


def read_png_gray(path: Path) -> np.ndarray:
    """Pixels of a grayscale PNG as a float array (height, width)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=float)


# ---------------------------------------------------------------- time series


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """Read a UCR/UEA `.ts` file: a list of (channels, length) arrays and their labels
    (class or target value, as written)."""
    series, labels = [], []
    in_data = False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower().startswith("@data")
            continue
        *channels, label = line.split(":")
        series.append(np.array([[float(v) for v in ch.split(",")] for ch in channels]))
        labels.append(label.strip())
    return series, labels


def write_series_split(series: Sequence[np.ndarray], labels: Sequence[object], target: str, public: Path,
                       private: Path, *, test_fraction: float, seed: int, sample_value: object,
                       stratify: bool, answers: Optional[pd.DataFrame] = None) -> None:
    """Write a time-series competition: public train.csv (id, target), test.csv (id),
    train_series.csv / test_series.csv in long format (id, t, value or dim_0..dim_k),
    sample_submission.csv; private answers.csv. `answers` (one row per series) replaces
    the target column in answers.csv and the sample submission."""
    labels = np.asarray(labels)
    order, test_mask = split_ids(len(series), labels if stratify else None, test_fraction, seed)
    ids = np.arange(len(series))

    def long_frame(rows: np.ndarray) -> pd.DataFrame:
        parts = []
        for new_id, src in zip(ids[rows], order[rows]):
            s = series[src]
            cols = {"value": s[0]} if s.shape[0] == 1 else {f"dim_{c}": s[c] for c in range(s.shape[0])}
            parts.append(pd.DataFrame({"id": new_id, "t": np.arange(s.shape[1]), **cols}))
        return pd.concat(parts, ignore_index=True)

    train_rows, test_rows = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    pd.DataFrame({"id": ids[train_rows], target: labels[order[train_rows]]}).to_csv(public / "train.csv", index=False)
    pd.DataFrame({"id": ids[test_rows]}).to_csv(public / "test.csv", index=False)
    long_frame(train_rows).to_csv(public / "train_series.csv", index=False)
    long_frame(test_rows).to_csv(public / "test_series.csv", index=False)
    if answers is None:
        ans = pd.DataFrame({"id": ids[test_rows], target: labels[order[test_rows]]})
    else:
        ans = pd.concat([pd.DataFrame({"id": ids[test_rows]}),
                         answers.reset_index(drop=True).iloc[order[test_rows]].reset_index(drop=True)], axis=1)
    sample = ans[["id"]].copy()
    for col in ans.columns[1:]:
        sample[col] = sample_value
    sample.to_csv(public / "sample_submission.csv", index=False)
    ans.to_csv(private / "answers.csv", index=False)


def series_features(long: pd.DataFrame, points: int = 32) -> pd.DataFrame:
    """One row per series id of a long-format frame (id, t, channels...): per channel the
    series resampled to `points` values, its first difference resampled to half as many,
    and summary statistics."""
    channels = [c for c in long.columns if c not in ("id", "t")]
    rows = {}
    for sid, g in long.sort_values(["id", "t"]).groupby("id", sort=True):
        feats: dict[str, float] = {"length": float(len(g))}
        for ch in channels:
            v = g[ch].to_numpy(dtype=float)
            grid = np.interp(np.linspace(0, len(v) - 1, points), np.arange(len(v)), v)
            feats.update({f"{ch}_p{i}": x for i, x in enumerate(grid)})
            d = np.diff(v) if len(v) > 1 else np.zeros(1)
            dgrid = np.interp(np.linspace(0, len(d) - 1, points // 2), np.arange(len(d)), d)
            feats.update({f"{ch}_d{i}": x for i, x in enumerate(dgrid)})
            slope = np.polyfit(np.arange(len(v)), v, 1)[0] if len(v) > 1 else 0.0
            feats.update({f"{ch}_mean": v.mean(), f"{ch}_std": v.std(), f"{ch}_min": v.min(), f"{ch}_max": v.max(),
                          f"{ch}_q25": np.quantile(v, 0.25), f"{ch}_q75": np.quantile(v, 0.75),
                          f"{ch}_argmax": float(np.argmax(v)) / len(v), f"{ch}_argmin": float(np.argmin(v)) / len(v),
                          f"{ch}_slope": slope, f"{ch}_diff_std": d.std(), f"{ch}_diff_absmean": np.abs(d).mean()})
        rows[sid] = feats
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("id")


# ---------------------------------------------------------------- grading


def aligned_columns(submission: pd.DataFrame, answers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check format against the answers and return (submission, answers) in the same row order."""
    check_submission_format(submission, answers)
    return align_to(submission, answers), answers.reset_index(drop=True)


def probabilities(sub: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The submission's `columns` as probabilities in [0, 1], or InvalidSubmissionError."""
    p = sub[columns].astype(float).to_numpy()
    if (p < 0).any() or (p > 1).any():
        bad = columns[int(np.argwhere((p < 0) | (p > 1))[0][1])]
        raise InvalidSubmissionError(f"column {bad!r} must hold probabilities between 0 and 1")
    return p


def class_labels(sub: pd.DataFrame, column: str, classes: Sequence[object]) -> np.ndarray:
    """The submission's predicted labels in `column`, each one of `classes`, or InvalidSubmissionError."""
    known = {str(c) for c in classes}
    as_text = sub[column].map(lambda v: str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v))
    unknown = as_text[~as_text.isin(known)]
    if len(unknown):
        raise InvalidSubmissionError(f"column {column!r} holds {unknown.iloc[0]!r}, which is not a class; "
                                     f"classes are {', '.join(sorted(known))}")
    return as_text.to_numpy()


def series_reference_features(public: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    """`load_features` for the reference field of a series competition (train.csv: id, label;
    train_series.csv / test_series.csv in long format): `series_features` of each series."""
    train, test = pd.read_csv(public / "train.csv"), pd.read_csv(public / "test.csv")
    X = series_features(pd.read_csv(public / "train_series.csv")).loc[train["id"]].reset_index(drop=True)
    X_test = series_features(pd.read_csv(public / "test_series.csv")).loc[test["id"]].reset_index(drop=True)
    return X, train[train.columns[1]], X_test, test["id"]
