"""harness.Client: the Python SDK of the harness HTTP service (`harness serve`).

    from harness import Client
    client = Client("http://localhost:8000", token=...)
    run_id = client.run(competition_set="experiments/splits/lite.txt", agent_id="dummy", lite=True)
    client.wait_for_completion(run_id)
    client.get_run_summary(run_id); client.get_results(run_id)

Every call is one HTTP request (`wait_for_completion` polls); any error answer
raises HarnessAPIError with the server's status and message.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import httpx

from harness.spec import RunSummary

DEFAULT_URL = "http://localhost:8000"

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "interrupted"})


class HarnessAPIError(Exception):
    """The server answered with an error (`status` is its HTTP status; 0 when it could not be reached)."""

    def __init__(self, status: int, message: str, body: Optional[dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body or {}

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.status else self.message


class Client:
    """Talks to one harness server (`base_url` defaults to $HARNESS_URL, else http://localhost:8000).
    `token` defaults to $HARNESS_API_TOKEN; `timeout_s` bounds each request (seconds)."""

    def __init__(self, base_url: Optional[str] = None, token: Optional[str] = None,
                 timeout_s: float = 60.0) -> None:
        # the seed's `Client()` means localhost:8000; $HARNESS_URL points it elsewhere
        self.base_url = (base_url or os.environ.get("HARNESS_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("HARNESS_API_TOKEN")
        headers = {"user-agent": "harness-client"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    # ------------------------------------------------------------------ plumbing

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as e:
            raise HarnessAPIError(0, f"{method} {self.base_url}{path} timed out ({type(e).__name__}); "
                                     "the server may be busy, retry or raise Client(timeout_s=...)") from None
        except httpx.TransportError as e:
            raise HarnessAPIError(0, f"cannot reach the harness server at {self.base_url} ({e}); "
                                     "start it with `harness serve` or check the URL") from None
        if resp.status_code >= 400:
            self._raise_for(resp)
        return resp

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # ------------------------------------------------------------------ runs

    def run(
        self,
        competitions: Union[str, Sequence[str], None] = None,
        agent_id: str = "dummy",
        lite: bool = True,
        *,
        competition_set: Optional[str] = None,
        seeds: int = 1,
        max_concurrency: Optional[int] = None,
        time_limit_s: Optional[float] = None,
        technique_tasks: Union[bool, Sequence[str]] = False,
        tasks: Sequence[str] = (),
        engineering_tasks: Sequence[str] = (),
        technique_level: Optional[str] = None,
        sandbox: Optional[str] = None,
        max_retries: Optional[int] = None,
        model: Optional[str] = None,
        token_limit: Optional[int] = None,
        cost_limit: Optional[float] = None,
        hints_from: Optional[str] = None,
        hints: Optional[str] = None,
    ) -> str:
        """Start a run; returns its id at once (the run goes on in the server).

        `competitions`: competition ids, or one split file / split name
        ("experiments/splits/low.txt", "lite"); `competition_set`: a split, as in
        the seeds. With neither (and no technique tasks) the `low` split runs.
        `technique_tasks=True, tasks=[...]` runs technique tasks (all when `tasks` is empty);
        `technique_level` picks their difficulty: easy (the default), medium, hard or all.
        """
        body: dict[str, Any] = {"agent_id": agent_id, "lite": lite, "seeds": seeds}
        if isinstance(competitions, str):
            if competitions.endswith(".txt") or "/" in competitions:
                body["competition_set"] = competitions
            else:
                body["competitions"] = competitions  # an id, or a split name: the server tells them apart
        elif competitions is not None:
            body["competitions"] = list(competitions)
        if competition_set is not None:
            if "competition_set" in body:
                raise ValueError("give the split once: either competitions='<split file>' or competition_set=")
            body["competition_set"] = competition_set
        if "competitions" not in body and "competition_set" not in body and not (technique_tasks or tasks or engineering_tasks):
            body["competition_set"] = "experiments/splits/low.txt"
        if technique_tasks:
            body["technique_tasks"] = technique_tasks if isinstance(technique_tasks, bool) else list(technique_tasks)
        if tasks:
            body["tasks"] = list(tasks)
        if engineering_tasks:
            body["engineering_tasks"] = list(engineering_tasks)
        for key, value in (("max_concurrency", max_concurrency), ("time_limit_s", time_limit_s),
                           ("sandbox", sandbox), ("max_retries", max_retries), ("model", model), ("token_limit", token_limit),
                           ("cost_limit", cost_limit), ("hints_from", hints_from), ("hints", hints),
                           ("technique_level", technique_level)):
            if value is not None:
                body[key] = value
        return str(self._json("POST", "/runs", json=body)["run_id"])

    def run_lite_existing_tasks(self, competition_set: str = "experiments/splits/low.txt", agent_id: str = "dummy") -> str:
        """The seed's one-liner: the lite size of every competition in a split, with `agent_id`."""
        return self.run(competition_set=competition_set, agent_id=agent_id, lite=True)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """Status (queued, running, completed, failed, cancelled, interrupted), done/total, timings, spec."""
        return dict(self._json("GET", f"/runs/{run_id}"))

    def get_run_summary(self, run_id: str) -> dict[str, Any]:
        """`run_id`, `eval_dir`, `files` and the aggregate metrics (valid submission rate, medals, per competition)."""
        return dict(self._json("GET", f"/runs/{run_id}/summary"))

    def get_summary(self, run_id: str) -> RunSummary:
        """The run's summary as the model the CLI and `summary.json` use (rates, per competition, per technique)."""
        return RunSummary.model_validate(self.get_run_summary(run_id))

    def get_results(self, run_id: str) -> Any:
        """One row per attempt as a pandas DataFrame (the store's Parquet schema)."""
        import pandas as pd

        resp = self._request("GET", f"/runs/{run_id}/results", params={"format": "parquet"})
        return pd.read_parquet(io.BytesIO(resp.content))

    def get_rollouts(self, run_id: str) -> list[dict[str, Any]]:
        """One record per attempt: `attempt` (status, score, tokens, cost, hints) and `trajectory` (harness-trajectory/1)."""
        return list(self._json("GET", f"/runs/{run_id}/rollouts"))

    def list_runs(self, status: Optional[str] = None, limit: Optional[int] = None) -> list[dict[str, Any]]:
        """Your runs, newest first (every page, or the first `limit`)."""
        runs: list[dict[str, Any]] = []
        offset: Optional[int] = 0
        while offset is not None and (limit is None or len(runs) < limit):
            params: dict[str, Any] = {"offset": offset, "limit": min(500, limit - len(runs)) if limit else 500}
            if status:
                params["status"] = status
            page = self._json("GET", "/runs", params=params)
            runs += page["runs"]
            offset = page["next_offset"]
        return runs

    def wait_for_completion(self, run_id: str, timeout: Optional[float] = None, poll_s: float = 2.0,
                            progress: bool = True) -> dict[str, Any]:
        """Poll until the run is completed, failed, cancelled or interrupted; returns the final run.
        Prints a line to stderr whenever the count of finished attempts changes (progress=False: silent).
        Raises TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last = None
        while True:
            run = self.get_run(run_id)
            line = (run["status"], run["done"], run["total"])
            if progress and line != last:
                print(f"{run_id}: {run['status']} {run['done']}/{run['total']} attempts "
                      f"({run['failed']} failed, {run['elapsed_s']:.0f}s)", file=sys.stderr, flush=True)
                last = line
            if run["status"] in TERMINAL_STATUSES:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} is still {run['status']} ({run['done']}/{run['total']} attempts) "
                                   f"after {timeout:g}s; wait again, or cancel it with client.cancel({run_id!r})")
            time.sleep(poll_s if deadline is None else max(0.0, min(poll_s, deadline - time.monotonic())))

    def cancel(self, run_id: str) -> dict[str, Any]:
        """Stop a run (running attempts are killed; it stays resumable). Returns {run_id, status}."""
        return dict(self._json("POST", f"/runs/{run_id}/cancel"))

    def resume(self, run_id: str) -> str:
        """Run the missing attempts of an interrupted, cancelled or failed run; returns its id."""
        return str(self._json("POST", f"/runs/{run_id}/resume")["run_id"])

    # ------------------------------------------------------------------ artifacts

    def list_artifacts(self, run_id: str) -> list[dict[str, Any]]:
        """Every file of the run directory: [{path, size}], paths relative to it."""
        return list(self._json("GET", f"/runs/{run_id}/artifacts")["files"])

    def get_artifact(self, run_id: str, path: str) -> bytes:
        """One file of the run directory (e.g. "artifacts/<attempt_id>/submission/submission.csv")."""
        return self._request("GET", f"/runs/{run_id}/artifacts/{path.lstrip('/')}").content

    def download_artifacts(self, run_id: str, dest: Union[str, Path]) -> Path:
        """The whole run directory, unpacked under `dest`; returns dest/<run_id>."""
        dest = Path(dest)
        buf = io.BytesIO()
        try:
            with self._http.stream("GET", f"/runs/{run_id}/artifacts.zip") as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._raise_for(resp)
                for chunk in resp.iter_bytes():
                    buf.write(chunk)
        except httpx.TransportError as e:
            raise HarnessAPIError(0, f"downloading the artifacts of {run_id} from {self.base_url} failed ({e}); retry") from None
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(buf) as zf:
            root = dest.resolve()
            for member in zf.infolist():
                target = (dest / member.filename).resolve()
                if root not in target.parents:  # a zip from a server is still untrusted input
                    raise HarnessAPIError(0, f"refusing to unpack {member.filename!r}: it leaves {dest}")
            zf.extractall(dest)
        return dest / run_id

    def download_submission(self, run_id: str, dest: Union[str, Path] = ".") -> Path:
        """Every attempt's submission files, written to dest/<run_id>/submission/<attempt_id>/...;
        returns dest/<run_id>/submission (with one attempt, its files are also right there)."""
        files = [f["path"] for f in self.list_artifacts(run_id)]
        picked = [(p, p.split("/")) for p in files if p.startswith("artifacts/") and p.count("/") >= 3]
        picked = [(p, parts) for p, parts in picked if parts[2] == "submission"]
        out = Path(dest) / _plain(run_id) / "submission"
        attempts = {parts[1] for _, parts in picked}
        for path, parts in picked:
            data = self.get_artifact(run_id, path)
            rel = parts[3:]
            _write_below(out, [parts[1], *rel], data)
            if len(attempts) == 1:
                _write_below(out, rel, data)
        out.mkdir(parents=True, exist_ok=True)
        return out

    def get_metrics(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's metrics per task: {"<competition>_metrics.json": {...}} as the summary's `files` name them."""
        summary = self.get_run_summary(run_id)
        eval_dir = str(summary.get("eval_dir") or "eval").strip("/")
        return {name: json.loads(self.get_artifact(run_id, f"{eval_dir}/{name}")) for name in summary.get("files", [])}

    def download_metrics(self, run_id: str, dest: Union[str, Path] = ".") -> Path:
        """The run's eval files (one `<competition>_metrics.json` per competition), written to
        dest/<run_id>/eval/; returns that folder."""
        out = Path(dest) / _plain(run_id) / "eval"
        out.mkdir(parents=True, exist_ok=True)
        for name, metrics in self.get_metrics(run_id).items():
            _write_below(out, [name], (json.dumps(metrics, indent=2) + "\n").encode())
        return out

    @staticmethod
    def _raise_for(resp: httpx.Response) -> None:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):  # not the API's JSON (a proxy in between, Serve itself)
            body = {"message": resp.text.strip()[:500] or resp.reason_phrase}
        raise HarnessAPIError(resp.status_code, str(body.get("message") or body), body)

    # ------------------------------------------------------------------ grading

    def grade(self, competition_id: str, path: Union[str, Path], lite: bool = False) -> dict[str, Any]:
        """Grade the submission file at `path` for `competition_id` on the server, without an agent
        (`POST /grade`); returns mlebench's report (score, thresholds, medals, invalid_reason)."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as e:
            raise HarnessAPIError(0, f"cannot read the submission {p}: {e.strerror}") from None
        return dict(self._json("POST", "/grade", data={"competition_id": competition_id, "lite": str(lite).lower()},
                               files={"file": (p.name, data, "application/octet-stream")}))

    # ------------------------------------------------------------------ catalogue

    def list_competitions(self, details: bool = False) -> list[Any]:
        """Competition ids (details=True: dicts with name, kind, metric, ...)."""
        items = self._json("GET", "/competitions")
        return items if details else [c["id"] for c in items]

    def list_agents(self, details: bool = False) -> list[Any]:
        """Agent ids (details=True: dicts with resources and time limit)."""
        items = self._json("GET", "/agents")
        return items if details else [a["id"] for a in items]

    def upload_agent(self, path_or_url: Union[str, Path], name: str, ref: Optional[str] = None,
                     timeout_s: float = 900.0) -> dict[str, Any]:
        """Register your own agent as `<you>/<name>`; returns its record (id, version, image, ...).

        `path_or_url`: an agent folder (packed here), a `.tar.gz` of one, or a git URL the server
        clones at `ref` (a URL, or anything given with a `ref`). The server checks the folder and
        builds its docker image when it has a Dockerfile (`timeout_s` bounds that, seconds); a refusal
        raises HarnessAPIError whose `body["log"]` holds the check's or the build's output."""
        target = str(path_or_url)
        local = Path(target).expanduser()
        is_url = ref is not None or "://" in target or bool(re.match(r"^[\w.-]+@[\w.-]+:", target))
        if is_url and not (local.is_file() and ref is None):
            return dict(self._json("POST", "/agents", json={"name": name, "git_url": target, "ref": ref}, timeout=timeout_s))
        if local.is_dir():
            data = _pack_folder(local)
        elif local.is_file():
            data = local.read_bytes()
        else:
            raise HarnessAPIError(0, f"{target!r} is neither an agent folder, a .tar.gz, nor a git URL")
        return dict(self._json("POST", "/agents", params={"name": name}, content=data,
                               headers={"content-type": "application/gzip"}, timeout=timeout_s))

    def delete_agent(self, name: str) -> dict[str, Any]:
        """Remove your agent `name` (or `<you>/<name>`) with every version; returns its last record."""
        return dict(self._json("DELETE", f"/agents/{name}"))

    def get_agent_build_log(self, name: str) -> str:
        """The docker build log of your agent's current version."""
        return self._request("GET", f"/agents/{name}/build-log").text

    def list_technique_tasks(self, details: bool = False) -> list[Any]:
        """Technique and engineering task names (details=True: dicts with kind and description)."""
        items = self._json("GET", "/technique-tasks")
        return items if details else [t["name"] for t in items]

    def health(self) -> dict[str, Any]:
        return dict(self._json("GET", "/healthz"))


def _plain(name: str) -> str:
    """A server-given name as one path component (a hostile server must not steer the write)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise HarnessAPIError(0, f"refusing to write under {name!r}: not a plain name")
    return name


def _write_below(root: Path, parts: Sequence[str], data: bytes) -> None:
    """Write `data` at root/parts..., refusing any part that could leave `root`."""
    for part in parts:
        _plain(part)
    target = root.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _pack_folder(folder: Path) -> bytes:
    """The folder as a .tar.gz (links kept as links, so the server can judge them; no .git, no caches)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(folder.rglob("*")):
            rel = p.relative_to(folder)
            if rel.parts[0] == ".git" or "__pycache__" in rel.parts:
                continue
            tar.add(p, arcname=rel.as_posix(), recursive=False)
    return buf.getvalue()
