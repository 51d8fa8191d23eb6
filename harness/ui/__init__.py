"""The dashboard: runs, run, attempt and compare pages over a run store.

    harness view [--store runs] [--port 7575]   # standalone, read-only, no Ray Serve
    harness serve                               # the service mounts it at /ui (its tokens, cancel/resume)

Modules, one job each:
    access.py   who sees which run (StoreAccess for `harness view`, ServiceAccess for the service), CSRF
    files.py    reading agent-written files safely (no links, regular files only, capped)
    views.py    what each page shows, read generically from the store
    plots.py    the leaderboard plot as SVG
    compare.py  paired differences over seeds with bootstrap intervals (also `harness compare`)
    app.py      the routes (FastAPI), templates/ (Jinja2) and static/ (our own small JS and CSS)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from harness.serve.service import RunService


def service_ui(service: "RunService") -> "FastAPI":
    """The dashboard app for the service (mount it at /ui): the service's users, runs and actions."""
    from harness.ui.access import ServiceAccess  # FastAPI and the pages load only when the dashboard is served
    from harness.ui.app import create_ui_app  # likewise

    return create_ui_app(ServiceAccess(service))


def standalone_app(store: Any) -> "FastAPI":
    """`harness view`'s app: the store's dashboard at /ui, read-only."""
    from harness.ui.app import create_standalone_app  # FastAPI and the pages load only for `harness view`

    return create_standalone_app(store)


__all__ = ["service_ui", "standalone_app"]
