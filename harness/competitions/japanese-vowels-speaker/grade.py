import pandas as pd
from sklearn.metrics import f1_score

from harness.competitions._common import aligned_columns, class_labels


def grade(submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    """Macro-averaged F1 over the nine speakers (each speaker counts equally). Higher is better."""
    sub, ans = aligned_columns(submission, answers)
    pred = class_labels(sub, "speaker", range(1, 10))
    truth = ans["speaker"].astype(int).astype(str).to_numpy()
    return float(f1_score(truth, pred, average="macro", labels=[str(k) for k in range(1, 10)], zero_division=0))
