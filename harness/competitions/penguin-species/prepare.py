"""Palmer Archipelago penguins (Gorman, Williams & Fraser 2014), as shipped inside the
`palmerpenguins` package: 344 penguins of three species, with island and sex (text, some
missing) and four body measurements (some missing). Target: the species, as probabilities.
Lite: 200 penguins, same species balance."""

from pathlib import Path

import pandas as pd

from harness.competitions._common import lite_subset, package_data, split_and_write

SPECIES = ["Adelie", "Chinstrap", "Gentoo"]


def prepare(raw: Path, public: Path, private: Path, lite: bool = False) -> None:
    frame = pd.read_csv(package_data("palmerpenguins", "data", "penguins.csv"))
    if lite:
        frame = lite_subset(frame, 200, seed=7, stratify="species")
    one_hot = pd.DataFrame({s: (frame["species"] == s).astype(int) for s in SPECIES})
    split_and_write(frame, "species", public, private, test_fraction=0.3, seed=20240103,
                    sample_value=1 / 3, stratify=True, answer_columns=one_hot)
