import numpy as np
import pandas as pd

from harness.competitions._common import aligned_columns


def grade(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    """Root mean squared error of the predicted progression. Lower is better."""
    sub, ans = aligned_columns(submission, answers)
    err = sub["progression"].astype(float).to_numpy() - ans["progression"].astype(float).to_numpy()
    return float(np.sqrt(np.mean(err**2)))
