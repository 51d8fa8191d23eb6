"""The HTTP API: FastAPI routes over RunService, served by Ray Serve.

    create_app(service)  the FastAPI app (also servable by plain uvicorn, see benchmarks/bench_serve.py)
    HarnessAPI           the Serve deployment (@serve.ingress, app built on the replica)
    build_app(args)      the application builder for `serve run harness.serve.app:build_app` and serve/config.yaml
    start(...)           what `harness serve` and the tests call
    serve_http(...)      uvicorn on a thread of the replica: the API's port on its own Ray, without the proxy hop
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from ray import serve as ray_serve
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import harness
from harness.objstore import is_remote, shown_store
from harness.serve.auth import TOKENS_ENV, ServiceConfigError, TokenTable, check_bind, load_tokens
from harness.serve.models import ArtifactList, ErrorBody, Health, RunAccepted, RunPage, RunRequest, RunView
from harness.serve.agents_upload import ALLOW_LOCAL_GIT_ENV, MAX_UPLOAD_BYTES
from harness.serve.agent_routes import add_agent_routes
from harness.serve.quotas import Quotas
from harness.serve.service import APIError, RunService, attempts_parquet
from harness.serve.life import can_connect, connect_host, embedded_node

log = logging.getLogger("harness.serve")

APP_NAME = "harness"
DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: a run request is a few hundred bytes
DEFAULT_MAX_RUNS_PER_USER = 4
GRADE_MAX_BODY_BYTES = 256 << 20  # POST /grade takes a submission file
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 422, 429)}


def _error(status: int, error: str, message: str, field: Optional[str] = None) -> JSONResponse:
    body = {"error": error, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status)


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413: at once by Content-Length, else (chunked)
    by reading the body up to the limit before the app sees it."""

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: Optional[dict[str, int]] = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits or {}  # e.g. POST /agents takes an archive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == "/grade" and self.max_bytes < GRADE_MAX_BODY_BYTES:
            await BodyLimit(self.app, GRADE_MAX_BODY_BYTES)(scope, receive, send)  # a submission file, not a run request
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""), self.max_bytes)
        too_large = _error(413, "too_large", f"request body over the limit of {limit} bytes; "
                                              + ("an agent folder holds code, not data" if limit != self.max_bytes
                                                 else "a run request is a small JSON object"))
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server holds the client to its Content-Length
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class TokenFirst:
    """Check the bearer token of an API request that carries a body before anything reads the body:
    a client without a valid token gets 401, never a parse or validation error of what it sent
    (nor a 256 MB buffer of it). The dashboard under /ui has its own login and is left to it."""

    BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: ASGIApp, service: RunService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and scope.get("method") in self.BODY_METHODS and path != "/ui" \
                and not path.startswith("/ui/"):
            header = dict(scope.get("headers") or []).get(b"authorization")
            try:
                self.service.authenticate(header.decode("latin-1") if header is not None else None)
            except APIError as e:
                await _error(e.status, e.error, e.message, e.field)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(service: RunService, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The API's routes over one RunService."""
    app = FastAPI(
        title="harness", version=harness.__version__, responses=_ERRORS,
        description="Evaluate ML-engineering agents as a service: start runs, watch them, fetch results "
                    "and artifacts. Send `Authorization: Bearer <token>` when the server has tokens.",
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, path_limits={"/agents": MAX_UPLOAD_BYTES})
    app.add_middleware(TokenFirst, service=service)  # added last, so it runs first: before BodyLimit reads a byte

    @app.exception_handler(APIError)
    async def _api_error(_: Request, e: APIError) -> JSONResponse:
        return _error(e.status, e.error, e.message, e.field)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        field, message = _describe_validation(e.errors())
        return _error(422, "invalid_request", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        if e.status_code == 404:
            message = f"no endpoint {request.method} {request.url.path}; the API is described at /docs"
        elif e.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; the API is described at /docs"
        else:
            message = str(e.detail)
        kind = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "error")
        return _error(e.status_code, kind, message)

    @app.exception_handler(Exception)
    async def _internal(request: Request, e: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal", f"internal error ({type(e).__name__}: {e}); the server log has the traceback")

    # declared so /docs has an Authorize button; the header itself is checked by the service
    bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                        description="a token from the server's tokens file (HARNESS_API_TOKENS)")

    def user(request: Request, _: Optional[HTTPAuthorizationCredentials] = Security(bearer)) -> str:
        return service.authenticate(request.headers.get("authorization"))

    # ---------------------------------------------------------------- runs

    @app.post("/runs", status_code=202, response_model=RunAccepted, tags=["runs"])
    def create_run(req: RunRequest, who: str = Depends(user)) -> RunAccepted:
        """Validate the request and start the run in the background; answers at once with its id."""
        return RunAccepted(run_id=service.start_run(req, who), status="queued")

    @app.get("/runs", response_model=RunPage, tags=["runs"])
    def list_runs(
        offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500),
        status: Optional[Literal["queued", "running", "completed", "failed", "cancelled", "interrupted"]] = None,
        who: str = Depends(user),
    ) -> RunPage:
        """Your runs, newest first."""
        runs, total = service.list_runs(who, offset, limit, status)
        nxt = offset + len(runs)
        return RunPage(runs=runs, total=total, offset=offset, limit=limit, next_offset=nxt if nxt < total else None)

    @app.get("/runs/{run_id}", response_model=RunView, tags=["runs"])
    def get_run(run_id: str, who: str = Depends(user)) -> RunView:
        """Status, attempts done/total, timings."""
        return service.get_run(run_id, who)

    @app.get("/runs/{run_id}/summary", tags=["runs"])
    def get_summary(run_id: str, who: str = Depends(user)) -> dict[str, Any]:
        """`run_id`, `eval_dir`, `files` (report files, fetch with /artifacts/{name}) and the aggregate metrics."""
        return service.summary(run_id, who)

    @app.get("/runs/{run_id}/results", tags=["runs"])
    def get_results(run_id: str, format: Literal["json", "parquet"] = "json", who: str = Depends(user)) -> Response:
        """One row per attempt: JSON records, or the Parquet table with `?format=parquet`."""
        df = service.results(run_id, who)
        if format == "parquet":
            return Response(attempts_parquet(df), media_type="application/vnd.apache.parquet",
                            headers={"content-disposition": f'attachment; filename="{run_id}.attempts.parquet"'})
        return Response(df.to_json(orient="records", date_format="iso"), media_type="application/json")

    @app.get("/runs/{run_id}/rollouts", tags=["runs"])
    def get_rollouts(run_id: str, who: str = Depends(user)) -> list[dict[str, Any]]:
        """One record per attempt: its row's outcome and its validated logs/trajectory.json (LLM agents)."""
        from harness.llm.rollouts import as_records, collect_rollouts

        return as_records(collect_rollouts(service.state_for(run_id, who)[0]))

    @app.post("/runs/{run_id}/cancel", status_code=202, response_model=RunAccepted, tags=["runs"])
    def cancel_run(run_id: str, who: str = Depends(user)) -> RunAccepted:
        """Stop a run; running attempts are killed and it stays resumable."""
        return RunAccepted(run_id=run_id, status=service.cancel_run(run_id, who))

    @app.post("/runs/{run_id}/resume", status_code=202, response_model=RunAccepted, tags=["runs"])
    def resume_run(run_id: str, who: str = Depends(user)) -> RunAccepted:
        """Run the attempts of an interrupted, cancelled or failed run that have no row yet."""
        return RunAccepted(run_id=service.resume_run(run_id, who), status="queued")

    # ---------------------------------------------------------------- artifacts

    @app.get("/runs/{run_id}/artifacts", response_model=ArtifactList, tags=["artifacts"])
    def list_artifacts(run_id: str, who: str = Depends(user)) -> ArtifactList:
        """Every file of the run directory (submissions, code, logs, reports)."""
        return ArtifactList(run_id=run_id, files=service.list_artifacts(run_id, who))

    @app.get("/runs/{run_id}/artifacts.zip", tags=["artifacts"], response_class=FileResponse)
    def artifacts_zip(run_id: str, who: str = Depends(user)) -> FileResponse:
        """The whole run directory as one zip."""
        path = service.artifacts_zip(run_id, who)
        return FileResponse(path, media_type="application/zip", filename=f"{run_id}.zip",
                            background=BackgroundTask(os.unlink, path))

    @app.get("/runs/{run_id}/artifacts/{path:path}", tags=["artifacts"], response_class=FileResponse)
    def get_artifact(run_id: str, path: str, who: str = Depends(user)) -> FileResponse:
        """One file, streamed; `path` is relative to the run directory."""
        return FileResponse(service.artifact_path(run_id, who, path), media_type=_media_type(path))

    # ---------------------------------------------------------------- catalogue

    @app.get("/competitions", tags=["catalogue"])
    def competitions(who: str = Depends(user)) -> list[dict[str, Any]]:
        from harness.registry import load_registry

        reg = load_registry()
        return [{"id": c.id, "name": c.name, "source": c.source, "kind": c.kind,
                 "metric": c.metric or c.grader.get("name", ""), "lower_is_better": c.lower_is_better}
                for c in sorted(reg.competitions.values(), key=lambda c: c.id)]

    @app.get("/agents", tags=["catalogue"])
    def agents(who: str = Depends(user)) -> list[dict[str, Any]]:
        """The server's agents, then your uploaded ones (`<user>/<name>`; an admin sees everybody's)."""
        return service.list_agents(who)

    add_agent_routes(app, service, user)

    @app.get("/technique-tasks", tags=["catalogue"])
    def technique_tasks(who: str = Depends(user)) -> list[dict[str, Any]]:
        from harness.technique import available_tasks

        return [t.model_dump() for t in available_tasks()]

    @app.get("/splits", tags=["catalogue"])
    def splits(who: str = Depends(user)) -> dict[str, list[str]]:
        """Competition sets a run can name in `competition_set`."""
        from harness.registry import list_splits, read_competition_set

        return {name: read_competition_set(str(path)) for name, path in list_splits().items()}

    # ---------------------------------------------------------------- grading (harness/regrade.py)

    @app.post("/grade", tags=["grading"])
    async def grade(request: Request, competition_id: Optional[str] = None, lite: Optional[bool] = None,
                    filename: Optional[str] = None, who: str = Depends(user)) -> dict[str, Any]:
        """Grade an uploaded submission (multipart field `file` and `competition_id`, or the raw file as
        the body with `?competition_id=`) without an agent; answers mlebench's report, never the answers."""
        from starlette.concurrency import run_in_threadpool

        from harness.data import PrepareError
        from harness.regrade import GradeInputError, grade_upload
        from harness.registry import RegistryError

        body = await request.body()
        try:
            return await run_in_threadpool(grade_upload, body, request.headers.get("content-type", ""),
                                           competition_id, lite, filename)
        except GradeInputError as e:
            raise APIError(400, str(e)) from None
        except RegistryError as e:
            raise APIError(404, str(e), field="competition_id") from None
        except PrepareError as e:
            raise APIError(409, str(e)) from None

    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        return Health(status="ok", version=harness.__version__, auth=service.tokens.enabled,
                      max_runs_per_user=service.max_runs_per_user)

    from harness.ui import service_ui  # the dashboard (harness/ui): pages at /ui, same tokens and runs

    app.mount("/ui", service_ui(service))
    return app


def _describe_validation(errors: Any) -> tuple[Optional[str], str]:
    """(field, one sentence) from FastAPI's validation errors, naming the first bad field."""
    first = list(errors)[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    loc = [str(x) for x in first.get("loc", ())]
    where = loc[0] if loc else "body"
    path = [x for x in loc[1:]]
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        pos = ctx.get("error", "") if isinstance(ctx, dict) else ""
        return None, f"request body is not valid JSON ({pos}); send a JSON object such as " \
                     '{"competition_set": "lite", "agent_id": "dummy"}'
    if where == "body" and not path:
        if first.get("type") == "missing":
            return None, 'request body is missing; send a JSON object such as {"competition_set": "lite", "agent_id": "dummy"}'
        return None, f"request body: {first.get('msg')}; send a JSON object"
    field = path[0] if path else where  # the body is flat: its top-level field is the one to fix
    kind = {"query": "query parameter", "path": "path parameter", "header": "header"}.get(where, "field")
    msg = first.get("msg", "invalid")
    if first.get("type") == "extra_forbidden":
        msg = "is not a known field (see POST /runs at /docs)"
    elif first.get("type") == "missing":
        msg = "is required"
    else:
        msg = f"{msg} (got {json.dumps(first.get('input'), default=str)[:80]})"
    return field, f"{kind} {field!r}: {msg}"


def _media_type(path: str) -> str:
    import mimetypes

    suffix = Path(path).suffix
    if suffix in (".log", ".md", ".py", ".txt", ".csv", ".yaml", ".yml", ".ipynb", ".sh"):
        return "text/plain; charset=utf-8"
    if suffix == ".parquet":
        return "application/vnd.apache.parquet"
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


# ====================================================================== Ray Serve


@ray_serve.deployment(name="HarnessAPI", num_replicas=1, ray_actor_options={"num_cpus": 0},
                      max_ongoing_requests=128, health_check_period_s=10)
@ray_serve.ingress()
class HarnessAPI:
    """The Serve replica: one RunService; the FastAPI app is built here, on the replica."""

    def __init__(self, store: str, tokens: Optional[str] = None, max_runs_per_user: int = DEFAULT_MAX_RUNS_PER_USER,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, store_display: Optional[str] = None,
                 agents_path: Sequence[str] = (), max_attempts_per_user: Optional[int] = None,
                 cpu_seconds_per_day: Optional[float] = None, allow_local_git: bool = False,
                 listen: Optional[str] = None) -> None:
        host = _proxy_host()
        if host is not None:
            check_bind(host, tokens)  # `serve run` with a non-loopback host and no tokens stops here
        self.service = RunService(store, TokenTable(tokens), max_runs_per_user, store_display=store_display,
                                  agents_path=agents_path,
                                  quotas=Quotas(max_concurrent_attempts=max_attempts_per_user,
                                                cpu_seconds_per_day=cpu_seconds_per_day),
                                  allow_local_git=allow_local_git)
        self.max_body_bytes = max_body_bytes
        # runs this service started that a dead server left queued/running go on (harness serve restarted)
        threading.Thread(target=_resume_orphans, args=(self.service,), name="resume-orphans", daemon=True).start()
        self.http: Optional[tuple[Any, threading.Thread]] = None
        if listen:  # the API's own port, answered from this process: no proxy -> replica hop per request
            lhost, _, lport = listen.rpartition(":")
            check_bind(lhost, tokens)
            self.http = serve_http(create_app(self.service, max_body_bytes), lhost, int(lport))

    def check_health(self) -> None:
        """Serve's periodic health check: a replica whose HTTP server stopped is replaced."""
        if self.http is not None and not self.http[1].is_alive():
            raise RuntimeError(f"the replica's HTTP server on {self.http[0].config.host}:{self.http[0].config.port} stopped")

    def __del__(self) -> None:  # Serve calls it when it stops the replica
        http = getattr(self, "http", None)
        if http is not None:
            http[0].should_exit = True

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.service, self.max_body_bytes)


def serve_http(app: ASGIApp, host: str, port: int) -> tuple[Any, threading.Thread]:
    """Serve `app` on host:port with uvicorn (uvloop, httptools) on a daemon thread of this process, as
    bare `uvicorn` would; returns (the uvicorn.Server: set `should_exit` to stop it, its thread). The
    socket is bound here, SO_REUSEADDR like uvicorn's own, so an error (port taken) raises at once."""
    import asyncio
    import socket

    import uvicorn

    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(2048)
    sock.setblocking(False)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, lifespan="off", access_log=False,
                                           log_level="warning", timeout_keep_alive=5))

    def run() -> None:
        loop: asyncio.AbstractEventLoop
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        loop.run_until_complete(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, name=f"http-{port}", daemon=True)
    thread.start()
    return server, thread


def _resume_orphans(service: RunService, retry_s: float = 120.0, period_s: float = 5.0) -> None:
    """Resume what a previous server left unfinished. A run whose lock is still held is looked at
    again every `period_s` seconds for `retry_s` seconds: the driver of a server killed a moment ago
    dies a few seconds after it."""
    import time

    deadline = time.monotonic() + retry_s
    only: Optional[set[str]] = None
    while True:
        try:
            resumed, held = service.resume_orphans(only)
        except Exception:  # noqa: BLE001  (the API serves anyway; such runs stay resumable by hand)
            log.exception("resuming the runs left by a previous server failed")
            return
        if resumed:
            log.warning("resumed %d run(s) a previous server left unfinished: %s", len(resumed), ", ".join(resumed))
        if not held or time.monotonic() >= deadline:
            return
        only = set(held)
        time.sleep(period_s)


def _proxy_host() -> Optional[str]:
    """The host Serve's HTTP proxies listen on, when the controller tells."""
    try:
        from ray.serve.context import _get_global_client

        return str(_get_global_client().http_config.host)  # type: ignore[union-attr]
    except Exception:
        return None


def build_app(args: dict[str, Any]) -> Any:
    """Application builder: `serve run harness.serve.app:build_app store=runs max_runs_per_user=4`, or
    serve/config.yaml. Paths are resolved here, in the process that runs `serve run`."""
    store = str(args.get("store") or os.environ.get("HARNESS_RUNS_DIR") or "runs")
    tokens = args.get("tokens") or os.environ.get(TOKENS_ENV) or None
    if tokens:
        tokens = str(Path(tokens).expanduser().resolve())
        load_tokens(tokens)  # a broken tokens file fails the deploy, not the first request
    options: dict[str, Any] = {"num_cpus": 0}
    if os.environ.get("HARNESS_ENV_FILE"):  # LLM agents: the replica and the run drivers it starts read the provider there,
        options["runtime_env"] = {"env_vars": {"HARNESS_ENV_FILE": os.path.abspath(os.environ["HARNESS_ENV_FILE"])}}  # also on a Ray started earlier
    return HarnessAPI.options(ray_actor_options=options).bind(  # type: ignore[attr-defined]
        store=store if is_remote(store) else str(Path(store).expanduser().resolve()), tokens=tokens,
        max_runs_per_user=int(args.get("max_runs_per_user") or os.environ.get("HARNESS_MAX_RUNS_PER_USER")
                              or DEFAULT_MAX_RUNS_PER_USER),
        max_body_bytes=int(args.get("max_body_bytes") or DEFAULT_MAX_BODY_BYTES),
        store_display=shown_store(store),
        agents_path=[str(Path(p).expanduser().resolve()) for p in _path_list(args.get("agents_path"))],
        max_attempts_per_user=_optional(args.get("max_attempts_per_user") or os.environ.get("HARNESS_MAX_ATTEMPTS_PER_USER"), int),
        cpu_seconds_per_day=_optional(args.get("cpu_seconds_per_day") or os.environ.get("HARNESS_CPU_SECONDS_PER_DAY"), float),
        # a git URL that is a path on the server clones the server's own files: only when the operator says so
        allow_local_git=bool(args.get("allow_local_git")) or os.environ.get(ALLOW_LOCAL_GIT_ENV, "") not in ("", "0", "false"),
        listen=str(args["listen"]) if args.get("listen") else None,
    )


def _optional(value: Any, kind: Any) -> Any:
    return None if value in (None, "") else kind(value)


def _path_list(value: Any) -> list[str]:
    """`agents_path` as a list, or one string of paths joined by the OS path separator."""
    if not value:
        return []
    if isinstance(value, str):
        return [p for p in value.split(os.pathsep) if p]
    return [str(p) for p in value]


def _check_port_free(host: str, port: int, wait_s: float = 20.0) -> None:
    """ServiceConfigError unless host:port can be bound; retried for `wait_s` seconds, because the
    replica of a server killed a moment ago lets go of the port a few seconds later."""
    import socket
    import time

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + wait_s
    while True:
        with socket.socket(family) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host.strip("[]"), port))
                return
            except OSError as e:
                if time.monotonic() < deadline and e.errno == errno.EADDRINUSE:
                    time.sleep(0.25)
                    continue
                raise ServiceConfigError(f"cannot listen on {host}:{port} ({e.strerror}): another process holds the port "
                                         "or the address is not this machine's; pick another --port / --host") from None


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host.strip("[]"), 0))
        return int(s.getsockname()[1])


def _wait_listening(host: str, port: int, timeout_s: float) -> bool:
    import time

    target = connect_host(host)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if can_connect(target, port):
            return True
        time.sleep(0.2)
    return False


def start(host: str = "127.0.0.1", port: int = 8000, *, store: Optional[str] = None, tokens: Optional[str] = None,
          max_runs_per_user: int = DEFAULT_MAX_RUNS_PER_USER, address: Optional[str] = None,
          agents_path: Sequence[str] = (), max_attempts_per_user: Optional[int] = None,
          cpu_seconds_per_day: Optional[float] = None, allow_local_git: bool = False) -> str:
    """Deploy the API and answer HTTP on host:port; returns its URL.

    On a Ray this process started (its own local Ray, the only node), the Serve replica answers on
    host:port itself, from a uvicorn server in its process (serve_http), and Serve's HTTP proxy
    listens on another port of the same host; on a Ray started elsewhere, Serve's proxy answers on
    host:port. Raises ServiceConfigError (before anything binds) for a non-loopback host without
    tokens, a bad tokens file, a port in use, or a Ray cluster that cannot be reached or refuses
    this client (the message names RAY_AUTH_MODE for token authentication). Uses the Ray this
    process is connected to, else `address`, else a new local one.
    """
    tokens = tokens or os.environ.get(TOKENS_ENV) or None
    check_bind(host, tokens)
    os.environ.setdefault("HARNESS_ENV_FILE", os.path.abspath(".env"))  # LLM agents: run drivers read the key there
    if tokens:
        load_tokens(tokens)
    _check_port_free(host, port)
    import ray

    if not ray.is_initialized():
        from harness.orchestrator import RunError, _init_ray

        try:
            _init_ray(address)
        except RunError as e:  # unreachable, or token authentication: one line, as for `harness run`
            raise ServiceConfigError(str(e)) from None
    here = embedded_node() is not None  # the replica runs on this machine: it can take the port itself
    ray_serve.start(http_options={"host": host, "port": _free_port(host) if here else port}, proxy_location="HeadOnly")
    ray_serve.run(build_app({"store": store, "tokens": tokens, "max_runs_per_user": max_runs_per_user,
                             "agents_path": list(agents_path), "max_attempts_per_user": max_attempts_per_user,
                             "cpu_seconds_per_day": cpu_seconds_per_day, "allow_local_git": allow_local_git,
                             "listen": f"{host}:{port}" if here else None}),
                  name=APP_NAME, route_prefix="/", blocking=False)
    if here and not _wait_listening(host, port, 60):
        raise ServiceConfigError(f"the API was deployed but nothing listens on {host}:{port}; "
                                 "the Serve logs of the Ray session (logs/serve/) say why")
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def stop() -> None:
    """Remove the API and Serve's proxies; runs in progress keep going in their own actors."""
    ray_serve.shutdown()  # type: ignore[no-untyped-call]


__all__ = ["HarnessAPI", "build_app", "create_app", "serve_http", "start", "stop", "ServiceConfigError"]
