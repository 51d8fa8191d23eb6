"""The `harness` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Evaluate ML-engineering agents: prepare -> sandbox -> grade -> Parquet, on Ray.")
console = Console(stderr=True)
out = Console()

StoreOpt = typer.Option(None, "--store", envvar="HARNESS_RUNS_DIR", help="Run store (default ./runs).")


def _fail(msg: object, code: int = 2) -> None:
    from pydantic import ValidationError

    if isinstance(msg, ValidationError):  # one line naming the field, not pydantic's report
        first = msg.errors()[0]
        msg = f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}"
    console.print(f"error: {msg}", style="red", markup=False, highlight=False)
    raise typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    from pydantic import ValidationError

    from harness.data import PrepareError
    from harness.orchestrator import RunError
    from harness.registry import RegistryError
    from harness.store import RunNotFound

    return (RegistryError, RunError, RunNotFound, PrepareError, ValidationError)


def _comma_list(values: Optional[List[str]]) -> list[str]:
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


@app.command()
def run(
    competition: Optional[List[str]] = typer.Option(None, "-c", "--competition", help="Competition id (repeatable)."),
    split: Optional[str] = typer.Option(None, "--split", help="Split name (lite, dev, all) or a split file."),
    agent: str = typer.Option("dummy", "--agent", "-a", help="Agent id (`harness list agents`)."),
    seeds: int = typer.Option(1, "--seeds", help="Attempts per task, seeds 0..N-1."),
    lite: bool = typer.Option(False, "--lite", help="Use the lite size of each competition."),
    sandbox: str = typer.Option("local", "--sandbox", help="local (bubblewrap), docker, or auto."),
    max_concurrency: Optional[int] = typer.Option(None, "--max-concurrency", help="Attempts running at once (default: as many as Ray fits)."),
    max_retries: int = typer.Option(2, "--max-retries", help="Retries of an attempt after an infrastructure failure."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds per attempt (default: the agent's)."),
    technique_tasks: Optional[List[str]] = typer.Option(None, "--technique-tasks", help="imbalance,missing,... or all."),
    engineering_tasks: Optional[List[str]] = typer.Option(None, "--engineering-tasks", help="ml-spec,eda-notebook,... or all."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Finish an earlier run: only missing attempts run."),
    store: Optional[Path] = StoreOpt,
    address: Optional[str] = typer.Option(None, "--address", envvar="RAY_ADDRESS", help="Ray cluster address (default: a local Ray)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON last."),
) -> None:
    """Run an agent on competitions or technique tasks; one Parquet row per attempt."""
    import harness

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("running {task.fields[running]} · failed {task.fields[failed]}"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)
    bar: dict[str, int] = {}

    def on_start(run_id: str) -> None:
        out.print(run_id)
        sys.stdout.flush()

    def on_progress(p) -> None:  # type: ignore[no-untyped-def]
        if "id" not in bar:
            progress.start()
            bar["id"] = progress.add_task("attempts", total=p.total, running=0, failed=0, completed=p.done)
        progress.update(bar["id"], completed=p.done, running=p.running, failed=p.failed)

    tt = _comma_list(technique_tasks)
    try:
        result = harness.run(
            competition or None, split=split, agent=agent, seeds=seeds, lite=lite, sandbox=sandbox,
            max_concurrency=max_concurrency, max_retries=max_retries, time_limit_s=time_limit,
            technique_tasks=tt, engineering_tasks=_comma_list(engineering_tasks), store=store, resume=resume,
            address=address, progress=on_progress, on_start=on_start,
        )
    except KeyboardInterrupt:
        progress.stop()
        console.print("[yellow]cancelled[/yellow]: running attempts were stopped; finish with `harness run --resume <run id>`")
        raise typer.Exit(130)
    except _user_errors() as e:
        progress.stop()
        _fail(e)
    progress.stop()
    from harness.store import RunStore

    _print_report(RunStore(result.run_dir.parent, result.run_id))
    if as_json:
        out.print_json(result.summary.model_dump_json())
    if result.status == "failed":
        raise typer.Exit(1)


@app.command()
def runs(store: Optional[Path] = StoreOpt) -> None:
    """One line per run: id, agent, attempts done/total, status."""
    from harness.orchestrator import driver_alive
    from harness.store import list_runs

    t = Table("run id", "agent", "done/total", "failed", "status", "created (UTC)")
    for s in list_runs(store):
        status = s.status
        if status == "running" and s.driver and not driver_alive(s.driver):
            status = "interrupted (resumable)"
        t.add_row(s.run_id, s.spec.agent, f"{s.done}/{s.total}", str(s.failed), status, f"{s.created_at:%Y-%m-%d %H:%M:%S}")
    out.print(t)


@app.command()
def report(run_id: str, store: Optional[Path] = StoreOpt, as_json: bool = typer.Option(False, "--json")) -> None:
    """The leaderboard table of a run again."""
    from harness.store import RunStore, default_store

    rs = RunStore(store or default_store(), run_id)
    try:
        rs.read_state()
    except _user_errors() as e:
        _fail(e)
    _print_report(rs)
    if as_json and rs.read_summary():
        out.print_json(rs.read_summary().model_dump_json())  # type: ignore[union-attr]


def _fmt(x: object, digits: int = 4) -> str:
    return "—" if x is None or (isinstance(x, float) and x != x) else f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _print_report(rs) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    from harness.report import mean_sem, medal_name, summarize

    state = rs.read_state()
    df = rs.attempts()
    if df.empty:
        out.print(f"run {state.run_id}: no attempts recorded yet ({state.status})")
        return
    summary = summarize(state, df)
    comp = df[df["task_kind"] == "competition"]
    if len(comp):
        seeds = sorted(comp["seed"].unique())
        t = Table(title=f"{state.run_id} · agent {state.spec.agent}", title_justify="left")
        t.add_column("competition")
        t.add_column("metric ↓/↑")
        t.add_column("median")
        for s in seeds:
            t.add_column(f"seed {s}")
        for cid, g in comp.groupby("competition_id"):
            lower = g["is_lower_better"].dropna()
            cells = []
            for s in seeds:
                r = g[g["seed"] == s]
                if r.empty:
                    cells.append("")
                    continue
                r = r.iloc[0]
                score = _fmt(None if pd.isna(r["score"]) else float(r["score"]))
                medal = medal_name(r)
                tag = f" [bold yellow]{medal}[/]" if medal else (" ▲" if r["above_median"] else "")
                status = "" if r["status"] == "succeeded" else f" [red]{r['status']}[/]"
                invalid = "" if r["valid_submission"] or r["status"] != "succeeded" else " [red]invalid[/]"
                cells.append(f"{score}{tag}{status}{invalid}")
            med = g["median_threshold"].dropna()
            t.add_row(cid, "↓" if len(lower) and bool(lower.iloc[0]) else "↑", _fmt(float(med.iloc[0]) if len(med) else None), *cells)
        out.print(t)
        a = Table(title="per agent, mean ± SEM over seeds", title_justify="left")
        for col in ("agent", "attempts", "valid submission", "any medal", "above median"):
            a.add_column(col)
        pm = lambda m, s: "—" if m is None else f"{m:.2f} ± {s or 0:.2f}"  # noqa: E731
        a.add_row(state.spec.agent, str(len(comp)), pm(summary.valid_submission_rate, summary.valid_submission_sem),
                  pm(summary.any_medal_rate, summary.any_medal_sem), pm(summary.above_median_rate, 0.0))
        out.print(a)
        from harness.cli_details import print_score_details  # per image type, lead, ... when the grader gives them

        print_score_details(rs, out)
    tech = df[df["task_kind"] == "technique"]
    if len(tech):
        t = Table(title=f"technique tasks · agent {state.spec.agent}", title_justify="left")
        for col in ("task", "attempts", "score (mean ± SEM)", "statuses"):
            t.add_column(col)
        for name, g in tech.groupby("technique"):
            m, s = mean_sem(g["score"].fillna(0.0).tolist())
            t.add_row(str(name), str(len(g)), f"{m:.2f} ± {s:.2f}", ", ".join(f"{k} {v}" for k, v in g["status"].value_counts().items()))
        out.print(t)
    out.print(f"status: {state.status} · {summary.done}/{state.total} attempts · " +
              ", ".join(f"{k} {v}" for k, v in summary.by_status.items()) + f" · {rs.dir}")


@app.command()
def prepare(
    competition: Optional[List[str]] = typer.Option(None, "-c", "--competition"),
    split: Optional[str] = typer.Option(None, "--split"),
    lite: bool = typer.Option(False, "--lite"),
) -> None:
    """Prepare competitions' data into the cache ($HARNESS_DATA_DIR)."""
    from harness.data import ensure_prepared
    from harness.registry import load_registry, read_competition_set
    from harness.spec import Settings

    settings = Settings.from_env()
    reg = load_registry(settings)
    try:
        ids = list(competition or []) + (read_competition_set(split) if split else [])
        if not ids:
            _fail("name competitions with -c ID or a split with --split lite")
        for cid in dict.fromkeys(ids):
            data = ensure_prepared(reg.competition(cid), settings, lite)
            out.print(f"{cid}: {data.public.parent}")
    except _user_errors() as e:
        _fail(e)


@app.command("list")
def list_(what: str = typer.Argument(..., help="competitions, agents, splits or tasks")) -> None:
    """List competitions, agents, splits or technique tasks."""
    from harness.registry import list_splits, load_registry
    from harness.spec import Settings

    settings = Settings.from_env()
    reg = load_registry(settings)
    if what == "competitions":
        from harness.data import prepared_data

        t = Table("id", "source", "kind", "metric", "lower better", "rows full/lite", "files", "MB", "prepared",
                  caption="sizes are what an agent gets (train + test rows); full/lite")
        for cid, c in sorted(reg.competitions.items()):
            sizes = (c.model_extra or {}).get("sizes") or {}
            size = lambda key: "/".join(str(v.get(key, "?")) for v in sizes.values() if isinstance(v, dict)) or "—"  # noqa: E731
            try:
                done = [k for k, lite in (("full", False), ("lite", True)) if prepared_data(c, settings, lite)]
                prepared = ", ".join(done) or "no"
            except Exception:
                prepared = "?"
            lower = c.lower_is_better if c.lower_is_better is not None else ("from leaderboard" if c.source == "mlebench" else None)
            t.add_row(cid, c.source, c.kind, c.metric or c.grader.get("name", ""), _fmt(lower), size("rows"),
                      size("files"), size("mb"), prepared)
        out.print(t)
    elif what == "agents":
        t = Table("id", "command", "cpus", "memory GB", "time limit s", "folder")
        for aid, a in sorted(reg.agents.items()):
            t.add_row(aid, str(a.command or a.start), _fmt(a.resources.cpus), _fmt(a.resources.memory_gb), _fmt(a.time_limit_s), a.dir.name)
        out.print(t)
    elif what == "splits":
        from harness.registry import read_competition_set

        for name, path in list_splits().items():
            out.print(f"{name}: {', '.join(read_competition_set(str(path)))}")
    elif what == "tasks":
        from harness.technique import list_tasks  # type: ignore[attr-defined]

        for line in list_tasks():
            out.print(line)
    else:
        _fail(f"cannot list {what!r}; choose competitions, agents, splits or tasks")
    for p in reg.problems:
        console.print(f"[yellow]skipped[/yellow] {p}")


@app.command()
def calibrate(competition: List[str] = typer.Argument(..., help="Competition id(s), or `all` for every built-in one.")) -> None:
    """Rewrite a built-in competition's leaderboard.csv from its reference-solution field."""
    from harness.calibrate import calibrate as run_calibration
    from harness.registry import load_registry
    from harness.spec import Settings

    settings = Settings.from_env()
    reg = load_registry(settings)
    ids = [c for c, cfg in reg.competitions.items() if cfg.source == "builtin"] if competition == ["all"] else competition
    for cid in ids:
        try:
            board = run_calibration(reg.competition(cid), settings)
        except _user_errors() as e:
            _fail(e)
        out.print(f"{cid}: {len(board)} reference solutions, best {board['score'].iloc[0]:.4f}, "
                  f"median {board['score'].median():.4f}, worst {board['score'].iloc[-1]:.4f}")


images_app = typer.Typer(no_args_is_help=True, help="Docker images agents run in (the docker sandbox).")
app.add_typer(images_app, name="images")
sandbox_app = typer.Typer(no_args_is_help=True, help="Sandbox housekeeping.")
app.add_typer(sandbox_app, name="sandbox")


@images_app.command("build")
def images_build(
    agent: Optional[List[str]] = typer.Option(None, "--agent", "-a", help="Agent id (repeatable); default: every agent with a Dockerfile."),
    base_from: str = typer.Option("auto", "--base-from", help="debootstrap (no registry needed), registry (python:3.11-slim), or auto."),
    rebuild_base: bool = typer.Option(False, "--rebuild-base", help="Build the base image even when it is present."),
    base_only: bool = typer.Option(False, "--base-only", help="Only the base image, no agent images."),
) -> None:
    """Build the harness base image (skipped when present) and the agent images the agents need."""
    from harness.images import ImageBuildError, agent_dockerfile, agent_image, docker_client, ensure_base_image
    from harness.registry import load_registry
    from harness.sandbox.base import SandboxUnavailable
    from harness.spec import Settings

    if base_from not in ("auto", "debootstrap", "registry"):
        _fail(f"--base-from {base_from!r}: choose debootstrap, registry or auto")
    reg = load_registry(Settings.from_env())
    try:
        folders = {} if base_only else {a: reg.agent(a).dir for a in agent} if agent else \
            {a: cfg.dir for a, cfg in sorted(reg.agents.items()) if agent_dockerfile(cfg.dir)}
    except _user_errors() as e:
        _fail(e)
    failed = []
    try:
        client = docker_client()
        ensure_base_image(client, method=base_from, log=console.print, force=rebuild_base)  # type: ignore[arg-type]
        for aid, folder in folders.items():
            try:
                out.print(f"{aid}: {agent_image(folder, client, log=console.print)}")
            except ImageBuildError as e:
                failed.append(aid)
                console.print(f"[red]{aid}:[/red] {e}")
    except (SandboxUnavailable, ImageBuildError) as e:
        _fail(e)
    if failed:
        _fail(f"could not build the image of {', '.join(failed)} (output above)", code=1)


@sandbox_app.command("gc")
def sandbox_gc(all_: bool = typer.Option(False, "--all", help="Also containers whose run may still be alive.")) -> None:
    """Remove attempt containers that a crashed run left behind (found by their labels)."""
    from harness.sandbox.base import SandboxUnavailable
    from harness.sandbox.docker import collect_leftovers

    try:
        removed = collect_leftovers(everything=all_)
    except SandboxUnavailable as e:
        _fail(e)
    for name in removed:
        out.print(f"removed {name}")
    console.print(f"{len(removed)} container(s) removed")


@app.command("serve")
def serve_(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; beyond loopback it needs HARNESS_API_TOKENS."),
    port: int = typer.Option(8000, "--port"),
    address: Optional[str] = typer.Option(None, "--address", envvar="RAY_ADDRESS", help="Ray cluster address (default: a local Ray)."),
    store: Optional[Path] = StoreOpt,
    max_runs_per_user: int = typer.Option(4, "--max-runs-per-user", envvar="HARNESS_MAX_RUNS_PER_USER", help="Concurrent runs per user."),
) -> None:
    """Serve the HTTP API for harness.Client on Ray Serve (docs at /docs); Ctrl-C stops it."""
    import time

    from harness.serve.app import ServiceConfigError, start, stop  # Ray Serve loads only for this command

    try:
        url = start(host, port, store=str(store) if store else None, max_runs_per_user=max_runs_per_user, address=address)
    except ServiceConfigError as e:
        _fail(e)
    console.print(f"harness API at {url} · docs {url}/docs · runs in {store or 'runs'} · Ctrl-C stops it")
    out.print(url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop()
        console.print("stopped; runs cut off with a local Ray are resumable (POST /runs/{id}/resume)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
