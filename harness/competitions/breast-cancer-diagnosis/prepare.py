"""Breast Cancer Wisconsin (Diagnostic), as shipped inside scikit-learn: 569 tumours,
30 features of cell nuclei measured on a digitised image; target: malignant (1) or benign (0).
Lite: 300 tumours, same class balance."""

from pathlib import Path

from sklearn.datasets import load_breast_cancer

from harness.competitions._common import lite_subset, split_and_write


def prepare(raw: Path, public: Path, private: Path, lite: bool = False) -> None:
    ds = load_breast_cancer(as_frame=True)
    frame = ds.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["malignant"] = 1 - frame.pop("target")  # sklearn codes malignant as 0
    if lite:
        frame = lite_subset(frame, 300, seed=7, stratify="malignant")
    split_and_write(frame, "malignant", public, private, test_fraction=0.3, seed=20240101, sample_value=0.5, stratify=True)
