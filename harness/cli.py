"""The `harness` command.

Output composes: on a terminal listings and reports are tables; piped or redirected they
are tab-separated lines with a header and every id and value in full; `--json` prints
JSON instead. Exit codes: 0 done, 1 the run ended with failures (the run failed, or an
attempt ended agent_failed, timeout, oom or infra_error), 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, List, Optional, Sequence

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from harness.data import ensure_prepared, prepared_data
from harness.errors import RunError
from harness.sandbox.docker.images import ImageBuildError, agent_dockerfile, agent_image, docker_client, ensure_base_image
from harness.registry import list_splits, load_registry, read_competition_set
from harness.cli_common import USER_ERRORS, console, fail, out
from harness.cli_details import print_score_details
from harness.report import mean_sem, medal_name, summarize
from harness.runspec import RunInput, load_run_file
from harness.sandbox.base import SandboxUnavailable
from harness.sandbox.docker import collect_leftovers
from harness.spec import FINAL_STATUSES, Settings, technique_level_of
from harness.store import RunStore, list_runs, store_location
from harness.technique import available_tasks

EXIT_CODES = "Exit codes: 0 done, 1 the run ended with failures, 2 bad input, 130 interrupted (Ctrl-C)."
app = typer.Typer(add_completion=False, no_args_is_help=True, epilog=EXIT_CODES,
                  help="Evaluate ML-engineering agents: prepare -> sandbox -> grade -> Parquet, on Ray.")

StoreOpt = typer.Option(None, "--store", envvar="HARNESS_RUNS_DIR", help="Run store (default ./runs).")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")
_fail = fail  # one line on stderr, exit code 2 (see harness.cli_common)


def _user_errors() -> tuple[type[BaseException], ...]:
    return USER_ERRORS


def _comma_list(values: Optional[List[str]]) -> list[str]:
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


# ---------------------------------------------------------------- output that composes


def _fmt(x: object, digits: int = 4) -> str:
    return "—" if x is None or (isinstance(x, float) and x != x) else f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _cell(x: object) -> str:
    """A TSV cell: the full value on one line."""
    text = "" if x is None or (isinstance(x, float) and x != x) else str(x)
    return text.replace("\t", " ").replace("\n", " ")


def emit_table(columns: Sequence[str], rows: Sequence[Sequence[object]], title: Optional[str] = None,
               caption: Optional[str] = None) -> None:
    """A table on a terminal; tab-separated lines (header first, values in full) otherwise."""
    if out.is_terminal:
        t = Table(*columns, title=title, title_justify="left", caption=caption)
        for row in rows:
            t.add_row(*[x if isinstance(x, str) else _fmt(x) for x in row])
        out.print(t)
        return
    if title:
        sys.stdout.write(f"# {title}\n")
    sys.stdout.write("\t".join(columns) + "\n")
    for row in rows:
        sys.stdout.write("\t".join(_cell(x) for x in row) + "\n")
    sys.stdout.flush()


def _key(column: str) -> str:
    """A column title as a JSON key: `memory GB` -> `memory_gb`, `rows full/lite` -> `rows_full_lite`."""
    return "_".join(column.lower().replace("/", " ").split())


def emit_json(obj: Any) -> None:
    """JSON on stdout (no colour, no wrapping), one document."""
    sys.stdout.write(json.dumps(obj, indent=1, default=str) + "\n")
    sys.stdout.flush()


def _line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- commands


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
    technique_level: str = typer.Option("easy", "--technique-level", help="Technique task difficulty: easy, medium, hard or all."),
    engineering_tasks: Optional[List[str]] = typer.Option(None, "--engineering-tasks", help="ml-spec,eda-notebook,... or all."),
    config: Optional[Path] = typer.Option(None, "--config", help="A run file (YAML/JSON: agent, competitions, split, seeds, ...) instead of the flags above."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Finish an earlier run: only missing attempts run."),
    store: Optional[str] = StoreOpt,
    address: Optional[str] = typer.Option(None, "--address", envvar="RAY_ADDRESS", help="Ray cluster address (default: a local Ray)."),
    as_json: bool = typer.Option(False, "--json", help="After the run id, print the summary as JSON (no tables)."),
    ray_resource: Optional[List[str]] = typer.Option(None, "--ray-resource",
                                                     help="NAME=AMOUNT: a custom Ray resource every attempt needs (repeatable)."),
    model: Optional[str] = typer.Option(None, "--model", help="LLM agents: the model to use (default: the agent's)."),
    token_limit: Optional[int] = typer.Option(None, "--token-limit", help="LLM agents: tokens per attempt."),
    cost_limit: Optional[float] = typer.Option(None, "--cost-limit", help="LLM agents: USD per attempt."),
    hints_from: Optional[str] = typer.Option(None, "--hints-from", help="Put this run's technique-task outputs for the same data into the instructions."),
    hints: str = typer.Option("outputs", "--hints", help="outputs, or rollouts (also the trajectories)."),
    allow_network: bool = typer.Option(False, "--allow-network", help="Grant network to an agent whose config asks for it (isolated, outbound only)."),
) -> None:
    """Run an agent on competitions or technique tasks; one Parquet row per attempt.
    Prints the run id first. Exit code 1 when the run ended with failures."""
    from harness.orchestrator import RunProgress, run as run_harness  # Ray loads only for the commands that run

    try:
        if config is not None:
            if competition or split or technique_tasks or engineering_tasks:
                raise RunError("--config names the run; drop -c/--split/--technique-tasks/--engineering-tasks or the file")
            given = load_run_file(config)
        else:
            given = RunInput(competitions=list(competition) if competition else None, split=split, agent=agent, seeds=seeds,
                             lite=lite, sandbox=sandbox, max_concurrency=max_concurrency, max_retries=max_retries,
                             time_limit_s=time_limit, technique_tasks=_comma_list(technique_tasks),
                             engineering_tasks=_comma_list(engineering_tasks),
                             ray_resources=_ray_resources(ray_resource or []), model=model, token_limit=token_limit,
                             cost_limit=cost_limit, hints_from=hints_from, hints=hints, allow_network=allow_network,
                             technique_level=technique_level)
    except USER_ERRORS as e:
        _fail(e)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("running {task.fields[running]} · failed {task.fields[failed]}"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)
    bar: dict[str, Any] = {}

    def on_start(run_id: str) -> None:
        _line(run_id)

    def on_progress(p: RunProgress) -> None:
        if "id" not in bar:
            progress.start()
            bar["id"] = progress.add_task("attempts", total=p.total, running=0, failed=0, completed=p.done)
        progress.update(bar["id"], completed=p.done, running=p.running, failed=p.failed)

    try:
        result = run_harness(None if resume else given, store=store, resume=resume, address=address,
                             progress=on_progress, on_start=on_start)
    except KeyboardInterrupt:
        progress.stop()
        console.print("[yellow]cancelled[/yellow]: running attempts were stopped; finish with `harness run --resume <run id>`")
        raise typer.Exit(130) from None
    except USER_ERRORS as e:
        progress.stop()
        _fail(e)
    progress.stop()
    if as_json:
        emit_json(result.summary.model_dump(mode="json"))
    else:
        _print_report(RunStore(store_location(store), result.run_id))
    raise typer.Exit(run_exit_code(result.status, result.summary.by_status))


def run_exit_code(status: str, by_status: dict[str, int]) -> int:
    """0 done; 1 the run failed or an attempt ended agent_failed, timeout, oom or infra_error; 130 cancelled."""
    if status == "cancelled":
        return 130
    failures = sum(n for s, n in by_status.items() if s in FINAL_STATUSES and s != "succeeded")
    return 1 if status == "failed" or failures else 0


@app.command()
def runs(store: Optional[str] = StoreOpt, as_json: bool = JsonOpt) -> None:
    """One line per run: id, agent, attempts done/total, status."""
    from harness.orchestrator import driver_alive  # Ray loads only for the commands that run

    rows = []
    try:
        states = list_runs(store)
    except USER_ERRORS as e:  # an object store that cannot be read
        _fail(e)
    for s in states:
        status: str = s.status
        if status == "running" and s.driver and not driver_alive(s.driver):
            status = "interrupted (resumable)" if not as_json else "interrupted"
        rows.append((s, status))
    if as_json:
        emit_json([{**s.model_dump(mode="json"), "status": status, "agent_id": s.spec.agent} for s, status in rows])
        return
    emit_table(["run id", "agent", "done/total", "failed", "status", "created (UTC)"],
               [(s.run_id, s.spec.agent, f"{s.done}/{s.total}", str(s.failed), status, f"{s.created_at:%Y-%m-%d %H:%M:%S}")
                for s, status in rows])


@app.command()
def report(run_id: str, store: Optional[str] = StoreOpt, as_json: bool = JsonOpt) -> None:
    """The leaderboard table of a run again (`--json`: its summary)."""
    try:
        rs = RunStore(store_location(store), run_id)
        state = rs.read_state()
    except USER_ERRORS as e:
        _fail(e)
    if as_json:
        summary = rs.read_summary() or summarize(state, rs.attempts(), rs.technique_grades())
        emit_json(summary.model_dump(mode="json"))
        return
    _print_report(rs)


def _print_report(rs: RunStore) -> None:
    import pandas as pd

    state = rs.read_state()
    df = rs.attempts()
    if df.empty:
        _line(f"run {state.run_id}: no attempts recorded yet ({state.status})")
        return
    summary = summarize(state, df)
    tty = out.is_terminal
    comp = df[df["task_kind"] == "competition"]
    if len(comp):
        seeds = sorted(comp["seed"].unique())
        rows = []
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
                tag = (f" [bold yellow]{medal}[/]" if tty else f" {medal}") if medal else (" ▲" if r["above_median"] else "")
                status = "" if r["status"] == "succeeded" else (f" [red]{r['status']}[/]" if tty else f" {r['status']}")
                invalid = "" if r["valid_submission"] or r["status"] != "succeeded" else (" [red]invalid[/]" if tty else " invalid")
                cells.append(f"{score}{tag}{status}{invalid}")
            med = g["median_threshold"].dropna()
            rows.append((str(cid), "↓" if len(lower) and bool(lower.iloc[0]) else "↑",
                         _fmt(float(med.iloc[0]) if len(med) else None), *cells))
        emit_table(["competition", "metric ↓/↑", "median", *[f"seed {s}" for s in seeds]], rows,
                   title=f"{state.run_id} · agent {state.spec.agent}")

        def pm(m: Optional[float], s: Optional[float]) -> str:
            return "—" if m is None else f"{m:.2f} ± {s or 0:.2f}"

        emit_table(["agent", "attempts", "valid submission", "any medal", "above median"],
                   [(state.spec.agent, str(len(comp)), pm(summary.valid_submission_rate, summary.valid_submission_sem),
                     pm(summary.any_medal_rate, summary.any_medal_sem), pm(summary.above_median_rate, summary.above_median_sem))],
                   title="per agent, mean ± SEM over seeds")
        print_score_details(rs, out)  # per image type, lead, ... when the grader gives them
    tech = df[df["task_kind"] == "technique"]
    if len(tech):
        trows = []
        levelled = tech.assign(_level=tech["attempt_id"].map(technique_level_of).fillna("—"))
        for (name, level), g in levelled.groupby(["technique", "_level"]):
            m, s = mean_sem(g["score"].fillna(0.0).tolist())
            trows.append((str(name), str(level), str(len(g)), f"{m:.2f} ± {s:.2f}",
                          ", ".join(f"{k} {v}" for k, v in g["status"].value_counts().items())))
        emit_table(["task", "level", "attempts", "score (mean ± SEM)", "statuses"], trows,
                   title=f"technique tasks · agent {state.spec.agent}")
    _line(f"status: {state.status} · {summary.done}/{state.total} attempts · " +
          ", ".join(f"{k} {v}" for k, v in summary.by_status.items()) + f" · {rs.location}")


@app.command()
def prepare(
    competition: Optional[List[str]] = typer.Option(None, "-c", "--competition"),
    split: Optional[str] = typer.Option(None, "--split"),
    lite: bool = typer.Option(False, "--lite"),
) -> None:
    """Prepare competitions' data into the cache ($HARNESS_DATA_DIR)."""
    settings = Settings.from_env()
    reg = load_registry(settings)
    try:
        ids = list(competition or []) + (read_competition_set(split) if split else [])
        if not ids:
            _fail("name competitions with -c ID or a split with --split lite")
        for cid in dict.fromkeys(ids):
            data = ensure_prepared(reg.competition(cid), settings, lite)
            _line(f"{cid}: {data.public.parent}")
    except USER_ERRORS as e:
        _fail(e)


LISTINGS = ("competitions", "agents", "splits", "tasks")


@app.command("list")
def list_(what: str = typer.Argument(..., help="competitions, agents, splits or tasks"), as_json: bool = JsonOpt) -> None:
    """List competitions, agents, splits or technique tasks (full ids when piped; --json for JSON)."""
    if what not in LISTINGS:
        _fail(f"cannot list {what!r}; choose {', '.join(LISTINGS)}")
    settings = Settings.from_env()
    reg = load_registry(settings)
    columns, rows = _listing(what, reg, settings)
    if as_json:
        emit_json([dict(zip([_key(c) for c in columns], row, strict=True)) for row in rows])
    else:
        caption = "sizes are what an agent gets (train + test rows); full/lite" if what == "competitions" else None
        emit_table(columns, [[_fmt(x) if not isinstance(x, (list, str)) else ", ".join(x) if isinstance(x, list) else x
                              for x in row] for row in rows], caption=caption)
    for p in reg.problems:
        console.print(f"[yellow]skipped[/yellow] {p}")


def _listing(what: str, reg: Any, settings: Settings) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows (raw values: numbers, None, lists) of one listing."""
    if what == "competitions":
        rows = []
        for cid, c in sorted(reg.competitions.items()):
            sizes = (c.model_extra or {}).get("sizes") or {}
            try:
                done = [k for k, small in (("full", False), ("lite", True)) if prepared_data(c, settings, small)]
                prepared = ", ".join(done) or "no"
            except Exception:  # a broken folder must not hide the listing
                prepared = "?"
            lower = c.lower_is_better if c.lower_is_better is not None else ("from leaderboard" if c.source == "mlebench" else None)
            rows.append([cid, c.source, c.kind, c.metric or c.grader.get("name", ""), lower, _sizes(sizes, "rows"),
                         _sizes(sizes, "files"), _sizes(sizes, "mb"), prepared])
        return ["id", "source", "kind", "metric", "lower better", "rows full/lite", "files", "MB", "prepared"], rows
    if what == "agents":
        return (["id", "command", "cpus", "memory GB", "time limit s", "folder"],
                [[aid, str(a.command or a.start), a.resources.cpus, a.resources.memory_gb, a.time_limit_s, str(a.dir)]
                 for aid, a in sorted(reg.agents.items())])
    if what == "splits":
        return ["split", "competitions"], [[name, read_competition_set(str(path))] for name, path in list_splits().items()]
    return ["task", "kind", "description"], [[t.name, t.kind, t.description] for t in available_tasks()]


def _sizes(sizes: dict[str, Any], key: str) -> Optional[str]:
    """`1797/599`: a config.yaml `sizes` entry over the full and lite sizes."""
    return "/".join(str(v.get(key, "?")) for v in sizes.values() if isinstance(v, dict)) or None


@app.command()
def calibrate(competition: List[str] = typer.Argument(..., help="Competition id(s), or `all` for every built-in one.")) -> None:
    """Rewrite a built-in competition's leaderboard.csv from its reference-solution field."""
    from harness.calibrate import calibrate as run_calibration  # scikit-learn's model zoo loads only for this command

    settings = Settings.from_env()
    reg = load_registry(settings)
    ids = [c for c, cfg in reg.competitions.items() if cfg.source == "builtin"] if competition == ["all"] else competition
    for cid in ids:
        try:
            board = run_calibration(reg.competition(cid), settings)
        except USER_ERRORS as e:
            _fail(e)
        _line(f"{cid}: {len(board)} reference solutions, best {board['score'].iloc[0]:.4f}, "
              f"median {board['score'].median():.4f}, worst {board['score'].iloc[-1]:.4f}")


images_app = typer.Typer(no_args_is_help=True, help="Docker images agents run in (the docker sandbox).")
app.add_typer(images_app, name="images")
sandbox_app = typer.Typer(no_args_is_help=True, help="Sandbox housekeeping.")
app.add_typer(sandbox_app, name="sandbox")
from harness.cli_agents import agents_app  # noqa: E402  (`harness agents push|list|delete`)
app.add_typer(agents_app, name="agents")


@images_app.command("build")
def images_build(
    agent: Optional[List[str]] = typer.Option(None, "--agent", "-a", help="Agent id (repeatable); default: every agent with a Dockerfile."),
    base_from: str = typer.Option("auto", "--base-from", help="debootstrap (no registry needed), registry (python:3.11-slim), or auto."),
    rebuild_base: bool = typer.Option(False, "--rebuild-base", help="Build the base image even when it is present."),
    base_only: bool = typer.Option(False, "--base-only", help="Only the base image, no agent images."),
    server: bool = typer.Option(False, "--server", help="Only the server image (Dockerfile.server), FROM the base image."),
) -> None:
    """Build the harness base image (skipped when present) and the agent images the agents need."""
    if server:  # the benchmark box: harness/cli_agents.py
        from harness.cli_agents import build_server  # the server image's build loads only for --server

        return build_server(force=rebuild_base)
    if base_from not in ("auto", "debootstrap", "registry"):
        _fail(f"--base-from {base_from!r}: choose debootstrap, registry or auto")
    reg = load_registry(Settings.from_env())
    try:
        folders = {} if base_only else {a: reg.agent(a).dir for a in agent} if agent else \
            {a: cfg.dir for a, cfg in sorted(reg.agents.items()) if agent_dockerfile(cfg.dir)}
    except USER_ERRORS as e:
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
    try:
        removed = collect_leftovers(everything=all_)
    except SandboxUnavailable as e:
        _fail(e)
    for name in removed:
        out.print(f"removed {name}")
    console.print(f"{len(removed)} container(s) removed")


def _ray_resources(items: List[str]) -> dict[str, float]:
    """`--ray-resource worker=0.5` flags as a dict; a malformed one is a usage error."""
    res: dict[str, float] = {}
    for item in items:
        name, sep, amount = item.partition("=")
        try:
            res[name.strip()] = float(amount) if sep else 1.0
        except ValueError:
            _fail(f"--ray-resource {item!r}: expected NAME=AMOUNT, e.g. --ray-resource harness_worker=1")
    return res


@app.command("serve")
def serve_(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; beyond loopback it needs HARNESS_API_TOKENS."),
    port: int = typer.Option(8000, "--port"),
    address: Optional[str] = typer.Option(None, "--address", envvar="RAY_ADDRESS", help="Ray cluster address (default: a local Ray)."),
    store: Optional[str] = StoreOpt,
    max_runs_per_user: int = typer.Option(4, "--max-runs-per-user", envvar="HARNESS_MAX_RUNS_PER_USER", help="Concurrent runs per user."),
) -> None:
    """Serve the HTTP API for harness.Client on Ray Serve (docs at /docs). SIGTERM or Ctrl-C stops it (exit 0);
    it exits 3 when its Ray or its HTTP listener is gone, so a supervisor can restart it."""
    from harness.cli_serve import serve  # Ray Serve loads only for this command

    serve(host, port, address, store, max_runs_per_user)


from harness import grade_cli  # noqa: E402  (grading without an agent, in mlebench's forms)

app.command("grade-sample")(grade_cli.grade_sample)
app.command("grade")(grade_cli.grade_batch)
app.command("regrade")(grade_cli.regrade_run)
from harness.cli_ui import compare as _compare, view as _view  # noqa: E402  (dashboard commands)

app.command("view")(_view)
app.command("compare")(_compare)
from harness.llm.rollouts import rollouts_command  # noqa: E402  (issue 13)

app.command("rollouts")(rollouts_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
