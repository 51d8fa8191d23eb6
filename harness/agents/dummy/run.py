"""The dummy agent: submit the sample submission as is. On a technique or
engineering task it writes an empty `{}` for each JSON output it is asked for
(which the grader rejects), so it scores 0: a floor every real agent should beat."""

import json
import os
import shutil
from pathlib import Path

data = Path(os.environ.get("DATA_DIR", "/home/data"))
out = Path(os.environ.get("SUBMISSION_DIR", "/home/submission"))
shutil.copyfile(__file__, Path(os.environ.get("CODE_DIR", "/home/code")) / "run.py")
if os.environ.get("HARNESS_TASK_KIND") == "technique":
    manifest = json.loads((data / "task.json").read_text()) if (data / "task.json").is_file() else {"outputs": []}
    for name in manifest["outputs"]:
        if name.endswith(".json"):
            (out / name).write_text("{}\n")
    print("dummy: wrote empty JSON outputs for technique task", os.environ.get("HARNESS_TECHNIQUE"))
elif not (data / "sample_submission.csv").is_file() and (data / "sample_submission.parquet").is_file():
    shutil.copyfile(data / "sample_submission.parquet", out / "submission.parquet")  # Kaggle's Parquet format
    print("dummy: copied sample_submission.parquet to", out / "submission.parquet")
else:
    sample = data / os.environ.get("SAMPLE_SUBMISSION", "sample_submission.csv")  # the competition's own name for it
    shutil.copyfile(sample, out / "submission.csv")
    print(f"dummy: copied {sample.name} to", out / "submission.csv")
