"""ItalyPowerDemand from the UCR time-series archive, as shipped inside `sktime`: 1,096 days
of Italian electrical power demand, 24 hourly readings each (z-normalised per day). Target:
whether the day is in the warm half of the year (April to September).
Lite: 500 days, same class balance."""

from pathlib import Path

import numpy as np
import pandas as pd

from harness.competitions._common import lite_subset, package_data, read_ts, write_series_split


def prepare(raw: Path, public: Path, private: Path, lite: bool = False) -> None:
    series, labels = [], []
    for part in ("TRAIN", "TEST"):
        s, y = read_ts(package_data("sktime", "datasets", "data", "ItalyPowerDemand", f"ItalyPowerDemand_{part}.ts"))
        series += s
        labels += y
    frame = pd.DataFrame({"k": np.arange(len(series)), "warm_season": [int(v == "2") for v in labels]})
    if lite:
        frame = lite_subset(frame, 500, seed=7, stratify="warm_season")
    write_series_split([series[k] for k in frame["k"]], frame["warm_season"].to_numpy(), "warm_season", public, private,
                       test_fraction=0.5, seed=20240106, sample_value=0.5, stratify=True)
