"""Features for the reference field: the 64 pixel values of each image."""

from pathlib import Path

import numpy as np
import pandas as pd

from harness.competitions._common import read_png_gray


def load_features(public: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    train, test = pd.read_csv(public / "train.csv"), pd.read_csv(public / "test.csv")

    def pixels(split: str, ids: pd.Series) -> pd.DataFrame:
        arr = np.stack([read_png_gray(public / split / f"{i}.png").ravel() for i in ids])
        return pd.DataFrame(arr, columns=[f"px{k}" for k in range(arr.shape[1])])

    return pixels("train", train["id"]), train["label"], pixels("test", test["id"]), test["id"]
