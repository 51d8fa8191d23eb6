import numpy as np
import pandas as pd

from harness.competitions._common import aligned_columns


def grade(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    """Mean absolute error of the predicted fat content, in percentage points. Lower is better."""
    sub, ans = aligned_columns(submission, answers)
    return float(np.mean(np.abs(sub["fat"].astype(float).to_numpy() - ans["fat"].astype(float).to_numpy())))
