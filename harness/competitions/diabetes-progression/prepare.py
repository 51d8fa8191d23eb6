"""The diabetes data of Efron et al. (2004), as shipped inside scikit-learn: 442 patients,
10 baseline variables (unscaled), target: a quantitative measure of disease progression one year later."""

from pathlib import Path

from sklearn.datasets import load_diabetes

from harness.competitions._common import split_and_write


def prepare(raw: Path, public: Path, private: Path) -> None:
    ds = load_diabetes(as_frame=True, scaled=False)
    frame = ds.frame.rename(columns={"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu",
                                     "target": "progression"})
    split_and_write(frame, "progression", public, private, test_fraction=0.3, seed=20240102, sample_value=150.0)
