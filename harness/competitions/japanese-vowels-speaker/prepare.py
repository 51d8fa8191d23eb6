"""JapaneseVowels from the UEA multivariate time-series archive, as shipped inside `sktime`:
640 utterances of the vowels /ae/ by nine male speakers, each a sequence of 7 to 29 frames of
12 LPC cepstrum coefficients. Target: the speaker (1-9).
Lite: 320 utterances, same speaker balance."""

from pathlib import Path

import numpy as np
import pandas as pd

from harness.competitions._common import lite_subset, package_data, read_ts, write_series_split


def prepare(raw: Path, public: Path, private: Path, lite: bool = False) -> None:
    series, labels = [], []
    for part in ("TRAIN", "TEST"):
        s, y = read_ts(package_data("sktime", "datasets", "data", "JapaneseVowels", f"JapaneseVowels_{part}.ts"))
        series += s
        labels += y
    frame = pd.DataFrame({"k": np.arange(len(series)), "speaker": [int(v) for v in labels]})
    if lite:
        frame = lite_subset(frame, 320, seed=7, stratify="speaker")
    write_series_split([series[k] for k in frame["k"]], frame["speaker"].to_numpy(), "speaker", public, private,
                       test_fraction=0.4, seed=20240107, sample_value=1, stratify=True)
