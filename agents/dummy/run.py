"""The dummy agent: submit the sample submission as is."""

import os
import shutil
from pathlib import Path

data = Path(os.environ.get("DATA_DIR", "/home/data"))
out = Path(os.environ.get("SUBMISSION_DIR", "/home/submission"))
shutil.copyfile(data / "sample_submission.csv", out / "submission.csv")
shutil.copyfile(__file__, Path(os.environ.get("CODE_DIR", "/home/code")) / "run.py")
print("dummy: copied sample_submission.csv to", out / "submission.csv")
