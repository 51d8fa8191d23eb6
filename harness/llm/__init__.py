"""LLM access for agents without network: a metered, OpenAI-compatible gateway per node.

    gateway.py     the gateway (a Ray actor per node): one Unix socket per attempt, per-attempt
                   tokens, limits, retries, accounting to logs/llm_calls.jsonl
    forwarder.py   stdlib-only: inside the sandbox, 127.0.0.1:<port> -> the attempt's socket
    session.py     what an attempt task does: open a session, wrap the command, close it
    models.py      the agent-config and accounting models (LLMAccess, LLMLimits, LLMUsage, ...)
    prices.py      the price table (prices.yaml, extended by $HARNESS_LLM_PRICES)
    trajectory.py  the rollout format (logs/trajectory.json), validated by pydantic
    rollouts.py    `harness rollouts <run_id>`: a run's trajectories with their scores
    hints.py       `--hints-from <run_id>`: an earlier run's outputs in the instructions

Importing this package loads nothing heavy (no aiohttp, no Ray); a sandbox may import it.
"""
