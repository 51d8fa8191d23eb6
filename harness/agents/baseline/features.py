"""Turn what a competition ships into one feature table per split, by task kind.

- tabular: train.csv / test.csv as they are (the model's preprocessor handles text and gaps);
- images:  `train/<id>.png` files -> grayscale pixels (images larger than 32x32 are shrunk);
- series:  `train_series.csv` in long format (id, t, one column per channel) -> per channel
           the series resampled to a fixed grid, its first difference on a coarser grid, and
           summary statistics (mean, spread, quantiles, extremes and where they are, slope).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def task_kind(data: Path) -> str:
    if (data / "train_series.csv").is_file():
        return "series"
    if (data / "train").is_dir() and any((data / "train").glob("*.png")):
        return "images"
    return "tabular"


def image_features(folder: Path, ids: pd.Series, max_side: int = 32) -> pd.DataFrame:
    from PIL import Image

    rows = []
    for i in ids:
        with Image.open(folder / f"{i}.png") as im:
            im = im.convert("L")
            if max(im.size) > max_side:
                im = im.resize((max_side, max_side))
            rows.append(np.asarray(im, dtype=np.float32).ravel() / 255.0)
    arr = np.stack(rows)
    return pd.DataFrame(arr, columns=[f"px{k}" for k in range(arr.shape[1])])


def series_features(long: pd.DataFrame, ids: pd.Series, points: int) -> pd.DataFrame:
    """One row per id in `ids` order. `points`: resampling grid per channel."""
    channels = [c for c in long.columns if c not in ("id", "t")]
    out = {}
    for sid, g in long.sort_values(["id", "t"]).groupby("id", sort=False):
        f: dict[str, float] = {"length": float(len(g))}
        for ch in channels:
            v = g[ch].to_numpy(dtype=float)
            x = np.arange(len(v))
            grid = np.interp(np.linspace(0, len(v) - 1, points), x, v)
            d = np.diff(v) if len(v) > 1 else np.zeros(1)
            dgrid = np.interp(np.linspace(0, len(d) - 1, max(2, points // 2)), np.arange(len(d)), d)
            f.update({f"{ch}_g{k}": val for k, val in enumerate(grid)})
            f.update({f"{ch}_d{k}": val for k, val in enumerate(dgrid)})
            f.update({
                f"{ch}_mean": v.mean(), f"{ch}_std": v.std(), f"{ch}_min": v.min(), f"{ch}_max": v.max(),
                f"{ch}_q10": np.quantile(v, 0.1), f"{ch}_q50": np.quantile(v, 0.5), f"{ch}_q90": np.quantile(v, 0.9),
                f"{ch}_first": v[0], f"{ch}_last": v[-1],
                f"{ch}_argmax": np.argmax(v) / len(v), f"{ch}_argmin": np.argmin(v) / len(v),
                f"{ch}_slope": np.polyfit(x, v, 1)[0] if len(v) > 1 else 0.0,
                f"{ch}_diff_std": d.std(), f"{ch}_diff_absmean": np.abs(d).mean(),
            })
        out[sid] = f
    return pd.DataFrame.from_dict(out, orient="index").loc[list(ids)].reset_index(drop=True)


def load_tables(data: Path) -> tuple[str, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(kind, train, test, X_train, X_test) where train/test are the id+label tables and
    X_* the feature tables (same row order). For tabular data X_* are train/test's columns."""
    train, test = pd.read_csv(data / "train.csv"), pd.read_csv(data / "test.csv")
    kind = task_kind(data)
    id_col = test.columns[0]
    if kind == "images":
        return kind, train, test, image_features(data / "train", train[id_col]), image_features(data / "test", test[id_col])
    if kind == "series":
        long_train, long_test = pd.read_csv(data / "train_series.csv"), pd.read_csv(data / "test_series.csv")
        # a fine grid for short or fixed-length series (spectra), a coarse one for long ones
        typical = int(long_train.groupby("id").size().median())
        channels = len([c for c in long_train.columns if c not in ("id", "t")])
        points = int(np.clip(typical if channels == 1 else 8, 8, 64))
        return (kind, train, test, series_features(long_train, train[id_col], points),
                series_features(long_test, test[id_col], points))
    features = [c for c in test.columns if c != id_col and c in train.columns]
    return kind, train, test, train[features], test[features]
