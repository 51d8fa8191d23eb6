import numpy as np
import pandas as pd

from harness.competitions._common import aligned_columns, probabilities


def grade(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    """Binary log loss of the predicted probability of an affair, probabilities clipped to
    [1e-15, 1 - 1e-15]. Lower is better."""
    sub, ans = aligned_columns(submission, answers)
    p = np.clip(probabilities(sub, ["had_affair"])[:, 0], 1e-15, 1 - 1e-15)
    y = ans["had_affair"].to_numpy(dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
