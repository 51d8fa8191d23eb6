"""Empty the package-data folders that built-in competitions are made from, so an
agent cannot rebuild the answers from them. Arguments: `package:subdir` pairs
(harness.sandbox.local.HIDDEN_PACKAGE_DATA). Run by `python3` at image build time."""

import importlib.util
import shutil
import sys
from pathlib import Path

for pair in sys.argv[1:]:
    package, _, sub = pair.partition(":")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        continue
    for location in (spec.submodule_search_locations or []) if spec else []:
        target = Path(location) / sub
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir()  # empty, as the local sandbox's tmpfs shows it
            print(f"hid {target}")
