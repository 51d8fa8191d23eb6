"""Features for the reference field: each series resampled to 32 points per channel, its
first difference to 16, plus summary statistics (mean, spread, quantiles, extremes and where they are, slope, roughness)."""

from pathlib import Path

import pandas as pd

from harness.competitions._common import series_features


def load_features(public: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    train, test = pd.read_csv(public / "train.csv"), pd.read_csv(public / "test.csv")
    X = series_features(pd.read_csv(public / "train_series.csv")).loc[train["id"]].reset_index(drop=True)
    X_test = series_features(pd.read_csv(public / "test_series.csv")).loc[test["id"]].reset_index(drop=True)
    return X, train[train.columns[1]], X_test, test["id"]
