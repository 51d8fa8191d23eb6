"""What a run's LLM agents used, aggregated for summary.json: totals, and mean ± SEM over
attempts, for the whole run and per competition (task)."""

from __future__ import annotations

from typing import Any, Optional

import pandas as pd

from harness.stats import mean_sem


def llm_summary(attempts: pd.DataFrame) -> Optional[dict[str, Any]]:
    """None when no attempt called an LLM; else totals and mean ± SEM of calls, tokens and cost
    (USD; a total is null when some call's model had no price), overall and per competition."""
    if "llm_calls" not in attempts or not attempts["llm_calls"].notna().any():
        return None
    df = attempts[attempts["llm_calls"].notna()].assign(tokens=lambda d: d["input_tokens"] + d["output_tokens"])

    def block(g: pd.DataFrame) -> dict[str, Any]:
        out: dict[str, Any] = {"attempts": int(len(g))}
        for col in ("llm_calls", "tokens", "input_tokens", "output_tokens", "cost_usd"):
            vals = g[col]
            m, s = mean_sem([float(v) for v in vals.dropna()])
            out[f"{col}_mean"], out[f"{col}_sem"] = m, s
            out[f"{col}_total"] = None if vals.isna().any() else float(vals.sum()) if col == "cost_usd" else int(vals.sum())
        limits = g["llm_limit_reached"].dropna()
        out["limit_reached"] = {str(k): int(v) for k, v in limits.value_counts().items()}
        return out

    agent = str(df["agent_id"].iloc[0]) if len(df) else ""
    return {"agent_id": agent, **block(df),
            "competitions": [{"competition_id": str(cid), **block(g)} for cid, g in df.groupby("competition_id")]}
