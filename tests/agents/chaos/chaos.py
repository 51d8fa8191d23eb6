import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

seed = int(os.environ["HARNESS_SEED"])
if seed == 1:
    subprocess.Popen(["sleep", "300", os.environ.get("PROBE_MARKER", "chaos-marker")], start_new_session=True)
    time.sleep(300)
elif seed == 2:
    hog = [bytearray(64 * 1024 * 1024) for _ in range(64)]
    for chunk in hog:
        chunk[::4096] = b"x" * len(chunk[::4096])
elif seed == 3:
    print("giving up", file=sys.stderr)
    sys.exit(1)
shutil.copyfile(Path(os.environ["DATA_DIR"]) / "sample_submission.csv", Path(os.environ["SUBMISSION_DIR"]) / "submission.csv")
