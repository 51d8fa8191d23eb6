"""Tecator from the Monash/UEA time-series regression archive, as shipped inside `sktime`:
215 finely chopped meat samples, each a near-infrared absorbance spectrum of 100 channels
(850-1050 nm). Target: the fat content (percent), measured by chemical analysis.
Lite: 150 samples."""

from pathlib import Path

import numpy as np
import pandas as pd

from harness.competitions._common import lite_subset, package_data, read_ts, write_series_split


def prepare(raw: Path, public: Path, private: Path, lite: bool = False) -> None:
    series, targets = [], []
    for part in ("TRAIN", "TEST"):
        s, y = read_ts(package_data("sktime", "datasets", "data", "Tecator", f"Tecator_{part}.ts"))
        series += s
        targets += [float(v) for v in y]
    frame = pd.DataFrame({"k": np.arange(len(series)), "fat": targets})
    if lite:
        frame = lite_subset(frame, 150, seed=7)
    write_series_split([series[k] for k in frame["k"]], frame["fat"].to_numpy(), "fat", public, private,
                       test_fraction=0.3, seed=20240108, sample_value=18.0, stratify=False)
