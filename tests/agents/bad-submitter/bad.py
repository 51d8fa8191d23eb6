"""Seed -> a malformed submission: 0 none, 1 binary, 2 empty, 3 missing ids, 4 extra ids,
5 wrong column, 6 missing column, 7 NaN, 8 inf, 9 not numeric, 10 valid (control)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd

seed = int(os.environ["HARNESS_SEED"])
sample = pd.read_csv(Path(os.environ["DATA_DIR"]) / "sample_submission.csv")
out = Path(os.environ["SUBMISSION_DIR"]) / "submission.csv"
target = sample.columns[1]
if seed == 1:
    out.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
elif seed == 2:
    out.write_bytes(b"")
elif seed == 3:
    sample.iloc[:-5].to_csv(out, index=False)
elif seed == 4:
    extra = sample.iloc[:1].copy()
    extra["id"] = 10**9
    pd.concat([sample, extra]).to_csv(out, index=False)
elif seed == 5:
    sample.rename(columns={target: "prediction"}).to_csv(out, index=False)
elif seed == 6:
    sample[["id"]].to_csv(out, index=False)
elif seed == 7:
    sample.assign(**{target: np.where(np.arange(len(sample)) == 0, np.nan, 0.5)}).to_csv(out, index=False)
elif seed == 8:
    sample.assign(**{target: np.where(np.arange(len(sample)) == 0, np.inf, 0.5)}).to_csv(out, index=False)
elif seed == 9:
    sample.assign(**{target: "high"}).to_csv(out, index=False)
elif seed == 10:
    sample.to_csv(out, index=False)
