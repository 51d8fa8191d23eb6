"""Helpers shared by the built-in competitions' prepare.py and grade.py files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.grading import InvalidSubmissionError, align_to, check_submission_format

__all__ = ["split_and_write", "aligned_columns", "InvalidSubmissionError"]


def split_and_write(frame: pd.DataFrame, target: str | list[str], public: Path, private: Path, *,
                    test_fraction: float = 0.3, seed: int = 0, sample_value: object = 0.0,
                    stratify: bool = False) -> None:
    """Shuffle `frame` with a fixed seed, hold out a test set, and write mlebench's
    files: public train.csv / test.csv / sample_submission.csv, private answers.csv.
    Ids are the shuffled row numbers, so they reveal nothing about the source order."""
    targets = [target] if isinstance(target, str) else list(target)
    rng = np.random.RandomState(seed)
    frame = frame.reset_index(drop=True)
    order = rng.permutation(len(frame))
    if stratify:
        # keep the class balance in both halves: take the test share of each class
        labels = frame[targets[0]].to_numpy()[order]
        test_mask = np.zeros(len(order), dtype=bool)
        for cls in np.unique(labels):
            idx = np.flatnonzero(labels == cls)
            test_mask[idx[: int(round(len(idx) * test_fraction))]] = True
    else:
        test_mask = np.arange(len(order)) < int(round(len(order) * test_fraction))
    shuffled = frame.iloc[order].reset_index(drop=True)
    shuffled.insert(0, "id", np.arange(len(shuffled)))
    train, test = shuffled[~test_mask], shuffled[test_mask]
    train.to_csv(public / "train.csv", index=False)
    test.drop(columns=targets).to_csv(public / "test.csv", index=False)
    sample = test[["id"]].copy()
    for t in targets:
        sample[t] = sample_value
    sample.to_csv(public / "sample_submission.csv", index=False)
    test[["id", *targets]].to_csv(private / "answers.csv", index=False)


def aligned_columns(submission: pd.DataFrame, answers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check format against the answers and return (submission, answers) in the same row order."""
    check_submission_format(submission, answers)
    return align_to(submission, answers), answers.reset_index(drop=True)
