"""The diabetes data of Efron et al. (2004), as shipped inside scikit-learn: 442 patients,
10 baseline variables (unscaled), target: a quantitative measure of disease progression one year later.
Lite: 250 patients."""

from pathlib import Path

from sklearn.datasets import load_diabetes

from harness.competitions._common import lite_subset, split_and_write


def prepare(raw: Path, public: Path, private: Path, lite: bool = False) -> None:
    ds = load_diabetes(as_frame=True, scaled=False)
    frame = ds.frame.rename(columns={"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu",
                                     "target": "progression"})
    if lite:
        frame = lite_subset(frame, 250, seed=7)
    split_and_write(frame, "progression", public, private, test_fraction=0.3, seed=20240102, sample_value=150.0)
