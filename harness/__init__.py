"""harness: evaluate ML-engineering agents on competitions and technique tasks,
in sandboxes, in parallel on Ray.

    import harness
    result = harness.run(split="lite", agent="dummy", seeds=1)    # or harness.run(harness.RunSpec(...))
    result.run_id, result.attempts, result.summary
    df = harness.load_results("runs")

Public names are loaded lazily so that `python3 -m harness.validate` inside a
sandbox does not import Ray.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "run": "harness.orchestrator",
    "RunResult": "harness.orchestrator",
    "RunSpec": "harness.spec",
    "RunInput": "harness.runspec",
    "RunSummary": "harness.spec",
    "load_run_file": "harness.runspec",
    "AttemptResult": "harness.spec",
    "GradeReport": "harness.spec",
    "load_results": "harness.store",
    "Client": "harness.client",
    "HarnessAPIError": "harness.client",
    "grade": "harness.regrade",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
