"""`harness view` (the dashboard of a store, standalone) and `harness compare` (runs side by side)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True, soft_wrap=True)
#: wide when piped, so the intervals are never cut by the table
out = Console(width=None if sys.stdout.isatty() else 240)


def _fail(msg: str) -> None:
    console.print(f"error: {msg}", style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def view(
    store: Optional[str] = typer.Option(None, "--store", envvar="HARNESS_RUNS_DIR", help="Run store (default ./runs; or s3://bucket/prefix)."),
    port: int = typer.Option(7575, "--port", help="Port on 127.0.0.1."),
    host: str = typer.Option("127.0.0.1", "--host", help="Loopback address to listen on (the standalone view has no login)."),
) -> None:
    """Open the dashboard of a run store at http://127.0.0.1:7575/ui (read-only, no Ray); Ctrl-C stops it."""
    import uvicorn

    from harness.serve.auth import is_loopback  # the dashboard's modules load only for `harness view`
    from harness.objstore import StoreError, shown_store  # likewise
    from harness.store import open_store  # likewise
    from harness.ui import standalone_app  # likewise

    try:
        root = open_store(store)  # an object store is checked here (one line when it cannot be read)
    except StoreError as e:
        _fail(str(e))
    if not is_loopback(host):
        _fail(f"--host {host}: `harness view` has no login, so it only listens on loopback (127.0.0.1); "
              "to share a dashboard run `harness serve` with HARNESS_API_TOKENS (its /ui has a login)")
    if isinstance(root, Path) and not root.is_dir():
        _fail(f"--store {root}: no such directory; point it at a run store (the folder `harness run --store` wrote)")
    shown = f"[{host}]" if ":" in host else host
    console.print(f"dashboard of {shown_store(str(root))} at http://{shown}:{port}/ui/ · read-only · Ctrl-C stops it")
    try:
        uvicorn.run(standalone_app(root), host=host, port=port, log_level="warning")
    except OSError as e:
        _fail(f"--port {port}: cannot listen ({e.strerror}); choose another port")


def compare(
    run_ids: List[str] = typer.Argument(..., help="Two or more run ids; the first is the base."),
    store: Optional[str] = typer.Option(None, "--store", envvar="HARNESS_RUNS_DIR", help="Run store (default ./runs; or s3://bucket/prefix)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Per competition and technique task: the paired difference of scores over seeds (other − base)
    with a 95% bootstrap interval, and valid/medal rates of each run."""
    from harness.objstore import StoreError, shown_store  # loaded only for `harness compare`
    from harness.store import RunNotFound, RunStore, open_store  # likewise
    from harness.ui.compare import compare_runs, fmt, fmt_delta, fmt_rate  # likewise

    if len(run_ids) < 2:
        _fail("compare needs at least two run ids: harness compare <base run> <other run> [...]")
    try:
        root = open_store(store)  # once, for every run id
    except StoreError as e:
        _fail(str(e))
    loaded = []
    for rid in run_ids:
        try:
            rs = RunStore(root, rid)
            state = rs.read_state()
        except RunNotFound as e:
            _fail(f"{e} (store {shown_store(store or 'runs')})")
        except StoreError as e:
            _fail(str(e))
        except ValueError as e:
            _fail(f"{rs.state_path}: not a valid run.json ({str(e).splitlines()[0]})")
        loaded.append((rid, state.spec.agent, rs.attempts()))
    comparison = compare_runs(loaded)
    if as_json:
        out.print_json(comparison.model_dump_json())
        return
    t = Table(title="runs · rates are mean ± SEM over seeds", title_justify="left")
    for col in ("run", "agent", "attempts", "valid submission", "any medal", "technique score"):
        t.add_column(col)
    for r in comparison.runs:
        t.add_row(r.run_id, r.agent_id, str(r.attempts), fmt_rate(r.valid_rate, r.valid_sem),
                  fmt_rate(r.medal_rate, r.medal_sem), fmt_rate(r.technique_score, r.technique_sem))
    out.print(t)
    pct = round(100 * comparison.confidence)
    for p in comparison.pairs:
        for title, rows in (("competitions", p.competitions), ("technique and engineering tasks", p.techniques)):
            if not rows:
                continue
            t = Table(title=f"{title}: {p.other} − {p.base} (paired by seed, {pct}% bootstrap interval)", title_justify="left")
            for col in ("task", "metric", "seeds", "base", "other", "delta [interval]", "verdict", "valid b/o", "medal b/o"):
                t.add_column(col)
            for d in rows:
                t.add_row(d.task, "↓" if d.is_lower_better else "↑", str(len(d.seeds)), fmt(d.base_mean), fmt(d.other_mean),
                          fmt_delta(d), d.verdict, f"{fmt_rate(d.base_valid_rate)}/{fmt_rate(d.other_valid_rate)}",
                          f"{fmt_rate(d.base_medal_rate)}/{fmt_rate(d.other_medal_rate)}")
            out.print(t)
