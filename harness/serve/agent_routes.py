"""The routes of users' agents: POST /agents (a .tar.gz body or a git URL), DELETE /agents/{id},
GET /agents/{id}/build-log. GET /agents (the catalogue, with one's uploads) is in app.py."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Callable, Optional

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from harness.serve.agents_upload import MAX_UPLOAD_BYTES, AgentRejected, UploadedAgent
from harness.serve.service import APIError, RunService


class GitAgentRequest(BaseModel):
    """POST /agents with a JSON body: clone `git_url` at `ref` (branch, tag or commit; default HEAD)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the agent's name; it is registered as <your user>/<name>")
    git_url: str
    ref: Optional[str] = None


def rejected(e: AgentRejected) -> JSONResponse:
    """The error body of a refused upload: its reason, and the check's or the build's log."""
    return JSONResponse({"error": "agent_rejected" if e.status == 400 else "not_found" if e.status == 404 else "error",
                         "message": e.reason, "log": e.log}, status_code=e.status)


def add_agent_routes(app: FastAPI, service: RunService, user: Callable[..., str]) -> None:
    """Mount the upload routes on `app`; `user` is the app's authentication dependency."""

    @app.post("/agents", status_code=201, response_model=UploadedAgent, tags=["agents"],
              openapi_extra={"requestBody": {"content": {
                  "application/gzip": {"schema": {"type": "string", "format": "binary"}},
                  "application/json": {"schema": GitAgentRequest.model_json_schema()}}}})
    async def upload_agent(request: Request, name: Optional[str] = Query(None, description="with a .tar.gz body"),
                           who: str = Depends(user)) -> Any:
        """Register an agent folder as `<you>/<name>`: the body is a .tar.gz of the folder (`?name=`),
        or JSON `{"name", "git_url", "ref"}`. The folder is checked and, with a Dockerfile, its image built;
        a refusal answers 400 with the reason and the log."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if kind == "application/json":
                try:
                    req = GitAgentRequest.model_validate_json(await request.body())
                except ValueError as e:
                    raise APIError(422, f"request body: expected {{\"name\", \"git_url\", \"ref\"}} ({str(e).splitlines()[-1]})") from None
                return await run_in_threadpool(service.register_git_agent, who, req.name, req.git_url, req.ref)
            if not name:
                raise APIError(422, "query parameter 'name' is required with a .tar.gz body (POST /agents?name=my-agent)",
                               field="name")
            fd, tmp = tempfile.mkstemp(prefix="harness-agent-", suffix=".tar.gz")
            try:
                size = 0
                with os.fdopen(fd, "wb") as f:
                    async for chunk in request.stream():
                        size += len(chunk)
                        if size > MAX_UPLOAD_BYTES:
                            raise APIError(413, f"the archive is over {MAX_UPLOAD_BYTES >> 20} MB; an agent folder holds code, not data")
                        f.write(chunk)
                return await run_in_threadpool(service.register_tarball_agent, who, name, tmp)
            finally:
                os.unlink(tmp)
        except AgentRejected as e:
            return rejected(e)

    @app.delete("/agents/{agent_id:path}", tags=["agents"], response_model=UploadedAgent)
    def delete_agent(agent_id: str, who: str = Depends(user)) -> Any:
        """Remove one of your agents (`my-agent` or `<you>/my-agent`) with every version."""
        try:
            return service.delete_agent(who, agent_id)
        except AgentRejected as e:
            return rejected(e)

    @app.get("/agents/{agent_id:path}/build-log", tags=["agents"], response_class=FileResponse)
    def build_log(agent_id: str, who: str = Depends(user)) -> Any:
        """The docker build log of your agent's current version."""
        path = service.agent_build_log(who, agent_id)
        return FileResponse(path, media_type="text/plain; charset=utf-8")
