"""Optical recognition of handwritten digits (Alpaydin & Kaynak, UCI), as shipped inside
scikit-learn: 1,797 8x8 grayscale images of the digits 0-9, written here as PNG files.
Lite: 600 images, same class balance."""

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

from harness.competitions._common import lite_subset, split_ids, write_png_gray


def prepare(raw: Path, public: Path, private: Path, lite: bool = False) -> None:
    ds = load_digits()
    images = np.rint(ds.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 counts -> 8-bit gray
    frame = pd.DataFrame({"src": np.arange(len(images)), "label": ds.target})
    if lite:
        frame = lite_subset(frame, 600, seed=7, stratify="label")
    order, test_mask = split_ids(len(frame), frame["label"].to_numpy(), test_fraction=0.3, seed=20240105)
    shuffled = frame.iloc[order].reset_index(drop=True)
    shuffled.insert(0, "id", np.arange(len(shuffled)))
    for split, rows in [("train", shuffled[~test_mask]), ("test", shuffled[test_mask])]:
        (public / split).mkdir()
        for i, src in zip(rows["id"], rows["src"]):
            write_png_gray(public / split / f"{i}.png", images[src])
    train, test = shuffled[~test_mask], shuffled[test_mask]
    train[["id", "label"]].to_csv(public / "train.csv", index=False)
    test[["id"]].to_csv(public / "test.csv", index=False)
    test[["id"]].assign(label=0).to_csv(public / "sample_submission.csv", index=False)
    test[["id", "label"]].to_csv(private / "answers.csv", index=False)
