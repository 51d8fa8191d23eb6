import pandas as pd
from sklearn.metrics import roc_auc_score

from harness.competitions._common import aligned_columns, probabilities


def grade(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    """ROC AUC of the predicted probability of malignancy (probabilities in [0, 1]). Higher is better."""
    sub, ans = aligned_columns(submission, answers)
    return float(roc_auc_score(ans["malignant"].astype(int), probabilities(sub, ["malignant"])[:, 0]))
