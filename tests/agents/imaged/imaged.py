"""Reports what its image holds, then submits the sample."""

import json
import os
import shutil
from pathlib import Path

import sklearn

data = Path(sklearn.__file__).parent / "datasets" / "data"
report = {
    "marker": Path("/opt/agent-marker").read_text().strip() if Path("/opt/agent-marker").exists() else None,
    "sklearn_data": sorted(os.listdir(data)) if data.is_dir() else None,
    "uid": os.getuid(),
}
Path(os.environ["LOGS_DIR"], "imaged.json").write_text(json.dumps(report))
shutil.copyfile(Path(os.environ["DATA_DIR"]) / "sample_submission.csv", Path(os.environ["SUBMISSION_DIR"]) / "submission.csv")
print("imaged done")
