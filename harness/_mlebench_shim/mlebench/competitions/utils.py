"""The input-preparing helpers of `mlebench.competitions.utils` most graders use, written
for harness: they check the submission and return the metric's keyword arguments."""

from __future__ import annotations

import pandas as pd

from mlebench.grade_helpers import InvalidSubmissionError


def _sorted_pair(submission: pd.DataFrame, answers: pd.DataFrame, id_col: str, target_col: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    for col in (id_col, target_col):
        if col not in submission.columns:
            raise InvalidSubmissionError(f"Submission must have a `{col}` column")
    if len(submission) != len(answers):
        raise InvalidSubmissionError(f"Submission has {len(submission)} rows, the answers {len(answers)}")
    sub, ans = submission.sort_values(id_col), answers.sort_values(id_col)
    if (sub[id_col].astype(str).to_numpy() != ans[id_col].astype(str).to_numpy()).any():
        raise InvalidSubmissionError(f"Submission and answers `{id_col}` values do not match")
    return sub, ans


def prepare_for_accuracy_metric(submission: pd.DataFrame, answers: pd.DataFrame, target_column: str, id_column: str) -> dict:
    sub, ans = _sorted_pair(submission, answers, id_column, target_column)
    return {"y_true": ans[target_column].to_numpy(), "y_pred": sub[target_column].to_numpy()}


def prepare_for_auroc_metric(submission: pd.DataFrame, answers: pd.DataFrame, id_col: str, target_col: str) -> dict:
    sub, ans = _sorted_pair(submission, answers, id_col, target_col)
    score = pd.to_numeric(sub[target_col], errors="coerce")
    if score.isna().any():
        raise InvalidSubmissionError(f"`{target_col}` must be numeric")
    if score.min() < 0 or score.max() > 1:
        raise InvalidSubmissionError(f"`{target_col}` must hold probabilities between 0 and 1")
    return {"y_true": ans[target_col].to_numpy(), "y_score": score.to_numpy()}
