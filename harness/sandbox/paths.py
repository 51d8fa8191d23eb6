"""What an agent sees, shared by every sandbox backend: mlebench's paths inside the
sandbox, where the harness package is mounted, and what of it (and of other packages'
data) is hidden. A leaf module: no backend imports another to learn these."""

from __future__ import annotations

from pathlib import Path

# Paths as the agent sees them (mlebench's layout).
DATA = "/home/data"
SUBMISSION = "/home/submission"
LOGS = "/home/logs"
CODE = "/home/code"
AGENT = "/home/agent"
INSTRUCTIONS = "/home/instructions.md"
VALIDATE = "/home/validate_submission.sh"

#: the harness package on this machine (a checkout's `harness/`, or site-packages' when installed)
HARNESS_PKG = Path(__file__).resolve().parent.parent
#: where the sandbox mounts it (its parent goes on the agent's PYTHONPATH)
SANDBOX_HARNESS = "/opt/harness"
#: folders of the harness package an agent must not see: competitions (preparers, graders,
#: reference solutions) and technique tasks (planted truths, reference outputs)
HIDDEN_HARNESS_DIRS = ("competitions", "technique_tasks")

#: package data that built-in competitions are made from; hidden from agents
HIDDEN_PACKAGE_DATA = [
    ("sklearn", "datasets/data"),
    ("sklearn", "datasets/descr"),
    ("sklearn", "datasets/images"),
    ("aeon", "datasets/data"),
    ("sktime", "datasets/data"),
    ("palmerpenguins", "data"),
    ("statsmodels", "datasets"),
]
