import numpy as np
import pandas as pd

from harness.competitions._common import aligned_columns, probabilities

SPECIES = ["Adelie", "Chinstrap", "Gentoo"]


def grade(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    """Multiclass log loss, the Kaggle way: each row's probabilities are rescaled to sum to 1,
    then clipped to [1e-15, 1 - 1e-15]. Lower is better."""
    sub, ans = aligned_columns(submission, answers)
    p = probabilities(sub, SPECIES)
    p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-15, None)
    p = np.clip(p, 1e-15, 1 - 1e-15)
    y = ans[SPECIES].to_numpy(dtype=float)
    return float(-np.mean(np.sum(y * np.log(p), axis=1)))
