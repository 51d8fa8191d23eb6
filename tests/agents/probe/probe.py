"""Reports, as JSON in the logs dir, which forbidden things this agent could see or reach.
The paths to try come from PROBE_PATHS (host paths the test knows); PROBE_CONNECT lists host:port."""

import json
import os
import shutil
import socket
from pathlib import Path

report = {"readable": {}, "connect": {}, "writable": {}}
for p in filter(None, os.environ.get("PROBE_PATHS", "").split(os.pathsep)):
    try:
        report["readable"][p] = sorted(os.listdir(p)) if os.path.isdir(p) else len(open(p, "rb").read())
    except OSError:
        report["readable"][p] = None
for hp in filter(None, os.environ.get("PROBE_CONNECT", "").split(",")):
    host, port = hp.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        report["connect"][hp] = True
    except OSError:
        report["connect"][hp] = False
for d in ["/home/data", "/home/agent", os.environ.get("DATA_DIR", "/home/data")]:
    try:
        Path(d, "probe-write").write_text("x")
        report["writable"][d] = True
    except OSError:
        report["writable"][d] = False
data = Path(os.environ.get("DATA_DIR", "/home/data"))
report["data_files"] = sorted(os.listdir(data))
try:
    import sklearn

    report["sklearn_data"] = sorted(os.listdir(Path(sklearn.__file__).parent / "datasets" / "data"))
except Exception as e:  # noqa: BLE001
    report["sklearn_data"] = repr(e)
Path(os.environ.get("LOGS_DIR", "/home/logs"), "probe.json").write_text(json.dumps(report, indent=1))
shutil.copyfile(data / "sample_submission.csv", Path(os.environ.get("SUBMISSION_DIR", "/home/submission")) / "submission.csv")
print("probe done")
