"""The dashboard's routes: a FastAPI app mounted at /ui by the service and by `harness view`.

Pages render on the server (Jinja2, autoescaped); the one script (static/ui.js, ours)
swaps in fragments while a run is live and turns plots into PNG. Every response carries
a Content-Security-Policy that allows nothing from elsewhere. Agent files are served
through `harness.ui.files` only: checked path, no links, regular files, as attachments
(images inline, under a CSP sandbox).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable, Optional
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from harness.ui import files, views
from harness.ui.access import COOKIE, Access, ActionRefused, NotFound
from harness.ui.compare import compare_runs, fmt, fmt_delta, fmt_rate

HERE = Path(__file__).resolve().parent
STATIC = {"ui.js": "text/javascript; charset=utf-8", "ui.css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
POLL_MS = 2000


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


class _Unauthorized(Exception):
    pass


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(cell=views.cell, fmt=fmt, fmt_delta=fmt_delta, fmt_rate=fmt_rate, quote=quote, poll_ms=POLL_MS)
    env.filters["pct"] = lambda x: "—" if x is None else f"{100 * x:.0f}%"
    env.filters["secs"] = lambda x: "—" if x is None else f"{x:.1f} s"
    env.filters["bytes"] = _bytes
    return env


def _bytes(n: Optional[int]) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return str(n)


def create_ui_app(access: Access) -> FastAPI:
    """The dashboard over `access` (StoreAccess for `harness view`, ServiceAccess in the service);
    mount it at /ui (links are built from the mount point)."""
    app = FastAPI(title="harness dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    env = _env()

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("content-security-policy", CSP)
        response.headers.setdefault("x-content-type-options", "nosniff")
        response.headers.setdefault("referrer-policy", "same-origin")
        response.headers.setdefault("x-frame-options", "DENY")
        response.headers.setdefault("cache-control", "no-store")
        return response

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def credential(request: Request) -> Optional[str]:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return request.cookies.get(COOKIE)

    def who(request: Request, page: bool = True) -> str:
        user = access.user(credential(request))
        if user is None:
            if page:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise _Redirect(f"{base(request)}/login?next={quote(target, safe='')}")
            raise _Unauthorized()
        return user

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        cred = credential(request)
        ctx.setdefault("user", access.user(cred))
        html = env.get_template(name).render(base=base(request), read_only=access.read_only,
                                             login_required=access.login_required,
                                             csrf=access.csrf_token(cred), **ctx)
        return HTMLResponse(html, status_code=status)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, e: NotFound) -> HTMLResponse:
        if request.headers.get("x-fragment"):
            return HTMLResponse(f"<div class=\"error\">{_esc(str(e))}</div>", status_code=404)
        return render(request, "error.html", status=404, title="not found",
                      message=f"{e}. The runs page lists the runs you can see.")

    @app.exception_handler(_Redirect)
    async def _redirect(_: Request, e: _Redirect) -> RedirectResponse:
        return RedirectResponse(e.url, status_code=303)

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(_: Request, e: _Unauthorized) -> PlainTextResponse:
        return PlainTextResponse("log in first (the dashboard's login page), or send Authorization: Bearer <token>",
                                 status_code=401)

    # ------------------------------------------------------------ static files and login

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise NotFound(f"no static file {name!r}")
        return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name],
                        headers={"cache-control": "max-age=3600"})

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "") -> HTMLResponse:
        return render(request, "login.html", title="log in", next=_safe_next(base(request), next), message="")

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        target = _safe_next(base(request), (form.get("next") or [""])[0])
        if not access.login_required:
            return RedirectResponse(target, status_code=303)
        if not token or access.user(token) is None:
            return render(request, "login.html", status=401, title="log in", next=target, user=None,
                          message="unknown token: use the bearer token the server's operator gave you")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=base(request) or "/",
                            secure=request.url.scheme == "https", max_age=7 * 24 * 3600)
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse(f"{base(request)}/login", status_code=303)
        response.delete_cookie(COOKIE, path=base(request) or "/")
        return response

    # ------------------------------------------------------------ runs

    def runs_context(request: Request, agent: str, status: str, competition: str, offset: int) -> dict[str, Any]:
        user = who(request, page=not request.headers.get("x-fragment"))
        ctx = views.runs_page(access, user, views.RunFilters(agent=agent, status=status, competition=competition), offset)
        ctx["query"] = "&".join(f"{k}={quote(v)}" for k, v in (("agent", agent), ("status", status),
                                                               ("competition", competition)) if v)
        return ctx

    @app.get("/", response_class=HTMLResponse)
    def runs(request: Request, agent: str = "", status: str = "", competition: str = "",
             offset: int = Query(0, ge=0)) -> HTMLResponse:
        return render(request, "runs.html", title="runs", **runs_context(request, agent, status, competition, offset))

    @app.get("/fragments/runs", response_class=HTMLResponse)
    def runs_fragment(request: Request, agent: str = "", status: str = "", competition: str = "",
                      offset: int = Query(0, ge=0)) -> HTMLResponse:
        return render(request, "_runs_table.html", **runs_context(request, agent, status, competition, offset))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str, page: int = Query(1, ge=1)) -> HTMLResponse:
        user = who(request)
        rs, state = access.run(run_id, user)
        ctx = views.run_page(access, base(request), rs, state, page)
        return render(request, "run.html", title=run_id, owner_can_act=not access.read_only and user is not None,
                      flash=request.query_params.get("flash", ""), **ctx)

    @app.get("/runs/{run_id}/live", response_class=HTMLResponse)
    def run_live(request: Request, run_id: str, page: int = Query(1, ge=1)) -> HTMLResponse:
        user = who(request, page=False)
        rs, state = access.run(run_id, user)
        ctx = views.run_page(access, base(request), rs, state, page)
        return render(request, "_run_live.html", owner_can_act=not access.read_only, **ctx)

    @app.get("/runs/{run_id}/plots/{competition_id}.svg")
    def plot_svg(request: Request, run_id: str, competition_id: str) -> Response:
        user = who(request, page=False)
        rs, state = access.run(run_id, user)
        df = rs.attempts()
        for v in views.competition_views(base(request), state, df, views.read_extra_table(rs, "score_details")):
            if v.competition_id == competition_id:
                return Response(v.plot_svg, media_type="image/svg+xml", headers={
                    "content-disposition": f'attachment; filename="{run_id}.{competition_id}.svg"'})
        raise NotFound(f"no competition {competition_id!r} in run {run_id}")

    @app.post("/runs/{run_id}/{action}")
    async def act(request: Request, run_id: str, action: str) -> Response:
        if action not in ("cancel", "resume"):
            raise NotFound(f"no action {action!r}")
        user = who(request, page=False)
        access.run(run_id, user)  # someone else's run: 404 before the token is even looked at
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        if not access.check_csrf(credential(request), (form.get("csrf") or [""])[0]):
            return PlainTextResponse("missing or stale form token: reload the run page and try again", status_code=403)
        try:
            status = access.cancel(run_id, user) if action == "cancel" else access.resume(run_id, user)
            flash = f"{action}: {status}"
        except ActionRefused as e:
            if e.status == 403:
                return PlainTextResponse(e.message, status_code=403)
            flash = f"{action} refused: {e.message}"
        return RedirectResponse(f"{base(request)}/runs/{run_id}?flash={quote(flash)}", status_code=303)

    # ------------------------------------------------------------ attempts and files

    @app.get("/runs/{run_id}/attempts/{attempt_id}", response_class=HTMLResponse)
    def attempt(request: Request, run_id: str, attempt_id: str) -> HTMLResponse:
        user = who(request)
        rs, state = access.run(run_id, user)
        rs.artifacts_dir(attempt_id)  # an object store (s3://...): the attempt's artifacts into the local mirror
        ctx = views.attempt_page(access, rs, state, attempt_id)
        return render(request, "attempt.html", title=attempt_id, **ctx)

    @app.get("/runs/{run_id}/attempts/{attempt_id}/live", response_class=HTMLResponse)
    def attempt_live(request: Request, run_id: str, attempt_id: str) -> HTMLResponse:
        user = who(request, page=False)
        rs, state = access.run(run_id, user)
        rs.artifacts_dir(attempt_id)  # an object store (s3://...): the attempt's artifacts into the local mirror
        ctx = views.attempt_page(access, rs, state, attempt_id)
        return render(request, "_attempt_live.html", **ctx)

    @app.get("/runs/{run_id}/attempts/{attempt_id}/inputs/{path:path}")
    def input_image(request: Request, run_id: str, attempt_id: str, path: str) -> Response:
        """A test image of the attempt's competition from the public data (what the agent saw)."""
        user = who(request, page=False)
        rs, state = access.run(run_id, user)
        row = views.attempt_row(rs, attempt_id)
        suffix = Path(path).suffix.lower()
        public = views.public_dir(str(row.get("competition_id")), bool(state.spec.lite)) if row else None
        if public is None or suffix not in files.IMAGE_SUFFIXES:
            raise NotFound(f"no input image {path!r}")
        try:
            data, size = files.read_capped(public, path, files.PREVIEW_BYTES * 8)
        except files.UnsafePath:
            raise NotFound(f"no input image {path!r}") from None
        if size > len(data):
            raise NotFound(f"input image {path!r} is too large to show")
        return Response(data, media_type=files.IMAGE_SUFFIXES[suffix], headers={"content-security-policy": FILE_CSP})

    @app.get("/runs/{run_id}/files/{path:path}")
    def file(request: Request, run_id: str, path: str) -> Response:
        user = who(request, page=False)
        rs, _ = access.run(run_id, user)
        if path.startswith("artifacts/") and path.count("/") >= 2:
            rs.artifacts_dir(path.split("/")[1])  # an object store (s3://...): fetched into the local mirror
        try:
            chunks, size = files.iter_file(rs.dir, path)
        except files.UnsafePath:
            raise NotFound(f"no file {path!r} in run {run_id}") from None
        name = path.rsplit("/", 1)[-1]
        suffix = Path(name).suffix.lower()
        headers = {"content-length": str(size), "content-security-policy": FILE_CSP}
        if suffix in files.IMAGE_SUFFIXES and request.query_params.get("inline"):
            media = files.IMAGE_SUFFIXES[suffix]
        else:
            media = "text/plain; charset=utf-8" if suffix in files.TEXT_SUFFIXES else "application/octet-stream"
            if suffix in files.IMAGE_SUFFIXES:
                media = files.IMAGE_SUFFIXES[suffix]
            headers["content-disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
        return StreamingResponse(chunks, media_type=media, headers=headers)

    # ------------------------------------------------------------ compare

    @app.get("/compare", response_class=HTMLResponse)
    def compare(request: Request) -> HTMLResponse:
        user = who(request)
        ids = [r for r in request.query_params.getlist("run") if r]
        visible = access.runs(user)
        comparison = None
        if len(ids) >= 2:
            loaded = []
            for rid in ids:
                rs, state = access.run(rid, user)
                loaded.append((rid, state.spec.agent, rs.attempts()))
            comparison = compare_runs(loaded)
        return render(request, "compare.html", title="compare", comparison=comparison, chosen=ids,
                      choices=[s.run_id for s in visible[:500]])

    return app


def _esc(s: str) -> str:
    from html import escape

    return escape(s)


def _safe_next(base: str, target: str) -> str:
    """Where to go after logging in: a path inside the dashboard, never another site."""
    root = f"{base}/"
    if target.startswith(root) and not target.startswith("//") and "\\" not in target and "://" not in target:
        return target
    return root


def create_standalone_app(store: Path | str) -> FastAPI:
    """`harness view`: the dashboard of one store at /ui (read-only), / redirecting there."""
    from harness.ui.access import StoreAccess  # the standalone view only

    outer = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    outer.mount("/ui", create_ui_app(StoreAccess(store)))

    @outer.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @outer.get("/favicon.ico", include_in_schema=False)
    def _favicon() -> Response:
        return Response(status_code=204)

    return outer


