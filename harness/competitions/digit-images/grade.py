import numpy as np
import pandas as pd

from harness.competitions._common import aligned_columns, class_labels


def grade(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    """Accuracy: the share of test images whose digit is predicted exactly. Higher is better."""
    sub, ans = aligned_columns(submission, answers)
    pred = class_labels(sub, "label", range(10))
    return float(np.mean(pred == ans["label"].astype(int).astype(str).to_numpy()))
