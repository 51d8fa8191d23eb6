"""`harness agents push` (a user's agent to a harness server) and `harness images build --server`."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console

from harness.client import Client, HarnessAPIError
from harness.sandbox.docker.images import ImageBuildError
from harness.sandbox.base import SandboxUnavailable
from harness.server_image import build_server_image

console = Console(stderr=True)
out = Console()

agents_app = typer.Typer(no_args_is_help=True, help="Your own agents on a harness server (POST /agents).")


def _fail(msg: object, code: int = 2) -> None:
    console.print(f"error: {msg}", style="red", markup=False, highlight=False)
    raise typer.Exit(code)


@agents_app.command("push")
def agents_push(
    source: str = typer.Argument(..., help="An agent folder, a .tar.gz of one, or a git URL (with --ref)."),
    name: str = typer.Option(..., "--name", "-n", help="The agent's name; it is registered as <your user>/<name>."),
    ref: Optional[str] = typer.Option(None, "--ref", help="Branch, tag or commit of a git URL (default: its HEAD)."),
    url: Optional[str] = typer.Option(None, "--url", envvar="HARNESS_URL", help="The server (default http://localhost:8000)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="HARNESS_API_TOKEN", help="Your bearer token."),
) -> None:
    """Upload an agent: the server checks it, builds its image when it has a Dockerfile, and registers it."""
    with Client(url, token=token) as client:
        try:
            rec = client.upload_agent(source, name, ref=ref)
        except HarnessAPIError as e:
            log = str(e.body.get("log") or "").strip()
            if log:
                console.print(log, markup=False, highlight=False)
            _fail(e, code=1)
    console.print(f"registered {rec['id']} version {rec['version']}" + (f" (image {rec['image']})" if rec.get("image") else ""))
    out.print(json.dumps(rec), markup=False, highlight=False)


@agents_app.command("list")
def agents_list(
    url: Optional[str] = typer.Option(None, "--url", envvar="HARNESS_URL"),
    token: Optional[str] = typer.Option(None, "--token", envvar="HARNESS_API_TOKEN"),
) -> None:
    """The server's agents and yours."""
    with Client(url, token=token) as client:
        try:
            for a in client.list_agents(details=True):
                out.print(f"{a['id']}\t{a.get('version', '')}", markup=False, highlight=False)
        except HarnessAPIError as e:
            _fail(e, code=1)


@agents_app.command("delete")
def agents_delete(
    name: str = typer.Argument(..., help="Your agent's name (or <you>/<name>)."),
    url: Optional[str] = typer.Option(None, "--url", envvar="HARNESS_URL"),
    token: Optional[str] = typer.Option(None, "--token", envvar="HARNESS_API_TOKEN"),
) -> None:
    """Remove one of your agents with every version."""
    with Client(url, token=token) as client:
        try:
            rec = client.delete_agent(name)
        except HarnessAPIError as e:
            _fail(e, code=1)
    console.print(f"deleted {rec['id']}")


def build_server(force: bool = False) -> None:
    """`harness images build --server`: the server image from Dockerfile.server (see harness/server_image.py)."""
    try:
        out.print(build_server_image(log=console.print, force=force))
    except (ImageBuildError, SandboxUnavailable) as e:
        _fail(e, code=1)
