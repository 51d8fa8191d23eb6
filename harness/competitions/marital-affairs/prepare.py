"""Fair's (1978) affairs survey, as shipped inside `statsmodels`: 6,366 married women who
answered a 1974 Redbook magazine survey. Occupation and religiousness are written as text, the
rest as numbers. Target: whether she reported any time spent in extramarital affairs.
Lite: 1,500 women, same class balance."""

from pathlib import Path

import pandas as pd

from harness.competitions._common import lite_subset, package_data, split_and_write

OCCUPATIONS = {1: "student", 2: "farming, semi-skilled or unskilled", 3: "white collar",
               4: "teacher, nurse, artist, technician or skilled", 5: "managerial or business",
               6: "professional with advanced degree"}
RELIGIOUS = {1: "not", 2: "mildly", 3: "fairly", 4: "strongly"}


def prepare(raw: Path, public: Path, private: Path, lite: bool = False) -> None:
    src = pd.read_csv(package_data("statsmodels", "datasets", "fair", "fair.csv"))
    frame = pd.DataFrame({
        "rate_marriage": src["rate_marriage"].astype(int),
        "age": src["age"],
        "yrs_married": src["yrs_married"],
        "children": src["children"],
        "religious": src["religious"].astype(int).map(RELIGIOUS),
        "educ": src["educ"].astype(int),
        "occupation": src["occupation"].astype(int).map(OCCUPATIONS),
        "occupation_husb": src["occupation_husb"].astype(int).map(OCCUPATIONS),
        "had_affair": (src["affairs"] > 0).astype(int),
    })
    if lite:
        frame = lite_subset(frame, 1500, seed=7, stratify="had_affair")
    split_and_write(frame, "had_affair", public, private, test_fraction=0.3, seed=20240104, sample_value=0.5, stratify=True)
