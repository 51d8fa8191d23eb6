"""What every `harness` subcommand module shares: the consoles, the errors a user can cause,
and the one-line failure. A leaf below harness/cli.py, so command modules registered there
(grading, rollouts, the dashboard, ...) never import the CLI back."""

from __future__ import annotations

from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from harness.data import PrepareError
from harness.errors import RegistryError, RunError
from harness.store import RunNotFound

console = Console(stderr=True)
out = Console()

#: exceptions that are the user's to fix: printed as one line, exit code 2
USER_ERRORS: tuple[type[BaseException], ...] = (RegistryError, RunError, RunNotFound, PrepareError, ValidationError)


def fail(msg: object, code: int = 2) -> NoReturn:
    """Print `error: <msg>` as one line on stderr and exit with `code` (2: bad input)."""
    if isinstance(msg, ValidationError):  # one line naming the field, not pydantic's report
        first = msg.errors()[0]
        msg = f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}"
    console.print(f"error: {msg}", style="red", markup=False, highlight=False, soft_wrap=True)  # one line, never wrapped
    raise typer.Exit(code)
