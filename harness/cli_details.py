"""`harness report`'s sub-score table: a competition's score per group (image type, lead, ...)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from harness.report import score_details_summary


def print_score_details(rs: Any, out: Console) -> None:
    """Print one table per competition of the run's recorded sub-scores (mean ± SEM over its
    attempts), if any were recorded; `rs` is the run's RunStore."""
    summary = score_details_summary(rs.score_details())
    for cid, g in summary.groupby("competition_id", sort=False):
        t = Table(title=f"{cid} · score by group, mean ± SEM over attempts", title_justify="left")
        for col in ("group", "attempts", "score"):
            t.add_column(col)
        for _, r in g.iterrows():
            t.add_row(str(r["group"]), str(r["attempts"]), f"{r['mean']:.4g} ± {(r['sem'] or 0.0):.2g}")
        out.print(t)
