"""Small statistics every summary shares (a leaf module: the report, the LLM usage block and
the dashboard all use it)."""

from __future__ import annotations

import math
from typing import Optional


def mean_sem(values: list[float]) -> tuple[Optional[float], Optional[float]]:
    """Mean and standard error of the mean (None for an empty list; SEM 0 for one value)."""
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    m = sum(vals) / len(vals)
    if len(vals) < 2:
        return m, 0.0
    var = sum((v - m) ** 2 for v in vals) / (len(vals) - 1)
    return m, math.sqrt(var / len(vals))
