"""The LLM gateway: one per node, holding the provider's key, serving each attempt that asks
for LLM access an OpenAI-compatible API on a Unix socket of its own.

A session is one attempt. Its socket sits alone in a directory that the sandbox mounts;
its token is checked on every call and dies with the session, so neither is of use outside
the attempt or after it. Every call is counted here (never from what the agent says), written
to a private `calls.jsonl` while the attempt runs and copied into the attempt's
`logs/llm_calls.jsonl` when it ends. Limits are checked before each call (429 naming the limit);
provider errors (429, 5xx, timeouts, refused connections) are retried with doubling backoff, and
a provider that stays down marks the session `provider_down` (the attempt becomes `infra_error`).

`Gateway` is plain asyncio (aiohttp) so it runs anywhere; `GatewayActor` puts it in a Ray
actor pinned to a node, and `node_gateway()` finds or starts the one of the calling node.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web

from harness.llm.models import LimitName, LLMUsage, SessionInfo, SessionSpec
from harness.llm.prices import PriceTable

SOCKET_NAME = "openai.sock"
MAX_REQUEST_BYTES = 32 * 1024**2
ENDPOINTS = ("/chat/completions", "/completions", "/embeddings", "/responses")
_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})


def _error(status: int, kind: str, message: str, code: Optional[str] = None) -> web.Response:
    """An OpenAI-style error body: {"error": {"message", "type", "code"}}."""
    return web.json_response({"error": {"message": message, "type": kind, "code": code or kind}}, status=status)


class _Session:
    def __init__(self, spec: SessionSpec, session_id: str, socket_dir: Path, record: Path, prices: PriceTable) -> None:
        self.spec = spec
        self.id = session_id
        self.token = "hsk-" + secrets.token_urlsafe(32)
        self.socket_dir = socket_dir
        self.record_path = record
        self.record = open(record, "a", buffering=1)
        self.prices = prices
        self.usage = LLMUsage()
        self.closed = False
        self.runner: Optional[web.AppRunner] = None

    def limit_hit(self) -> Optional[tuple[LimitName, str]]:
        lim, u = self.spec.limits, self.usage
        if lim.calls is not None and u.calls >= lim.calls:
            return "calls", f"call limit of {lim.calls} reached ({u.calls} calls made)"
        if lim.tokens is not None and u.input_tokens + u.output_tokens >= lim.tokens:
            return "tokens", f"token limit of {lim.tokens} reached ({u.input_tokens + u.output_tokens} tokens used)"
        if lim.cost_usd is not None and u.cost_usd is not None and u.cost_usd >= lim.cost_usd:
            return "cost_usd", f"cost limit of ${lim.cost_usd:g} reached (${u.cost_usd:.6f} spent)"
        return None

    def charge(self, model: str, input_tokens: int, output_tokens: int) -> Optional[float]:
        u = self.usage
        u.calls += 1
        u.input_tokens += input_tokens
        u.output_tokens += output_tokens
        cost = self.prices.cost(model, input_tokens, output_tokens)
        if cost is None:
            if model not in u.unpriced_models:
                u.unpriced_models.append(model)
            u.cost_usd = None
        elif u.cost_usd is not None:
            u.cost_usd += cost
        return cost

    def write(self, entry: dict[str, Any]) -> None:
        self.record.write(json.dumps(entry, default=str) + "\n")


class Gateway:
    """Serves sessions; one asyncio loop, any number of sessions. Not thread-safe: call it from its loop."""

    def __init__(self, root: Optional[Path] = None) -> None:
        # short: a Unix socket path must stay under 108 bytes
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="hllm-"))
        self.root.chmod(0o711)
        self.sessions: dict[str, _Session] = {}
        self._http: Optional[ClientSession] = None
        self._prices: dict[Optional[str], PriceTable] = {}

    def _client(self) -> ClientSession:
        if self._http is None or self._http.closed:
            self._http = ClientSession(connector=TCPConnector(limit=0, keepalive_timeout=30), auto_decompress=True)
        return self._http

    async def open(self, spec: SessionSpec) -> SessionInfo:
        """Start serving one attempt; returns where its socket is and its token."""
        sid = secrets.token_hex(6)
        socket_dir = self.root / sid
        socket_dir.mkdir(mode=0o755)
        socket_dir.chmod(0o755)  # the agent may run as another uid (docker's nonroot)
        prices = self._prices.get(spec.provider.prices_file)
        if prices is None:
            prices = self._prices[spec.provider.prices_file] = PriceTable.load(spec.provider.prices_file)
        s = _Session(spec, sid, socket_dir, self.root / f"{sid}.jsonl", prices)
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(s, request)

        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        path = socket_dir / SOCKET_NAME
        await web.UnixSite(runner, str(path)).start()
        path.chmod(0o666)
        s.runner = runner
        self.sessions[sid] = s
        if spec.expires_s is not None:
            asyncio.get_running_loop().call_later(spec.expires_s, lambda: asyncio.ensure_future(self._expire(sid)))
        return SessionInfo(session_id=sid, socket_dir=str(socket_dir), socket_name=SOCKET_NAME, token=s.token)

    def usage(self, session_id: str) -> LLMUsage:
        return self.sessions[session_id].usage.model_copy(deep=True)

    async def close(self, session_id: str) -> LLMUsage:
        """Revoke the token, stop the socket, put the calls into the attempt's logs; returns the totals."""
        s = self.sessions.pop(session_id)
        s.closed = True
        try:
            if s.runner is not None:
                await s.runner.cleanup()
        finally:
            shutil.rmtree(s.socket_dir, ignore_errors=True)
            s.record.close()
            try:
                copy_into_logs(s.record_path, Path(s.spec.logs_dir), "llm_calls.jsonl")
            finally:
                s.record_path.unlink(missing_ok=True)
        return s.usage

    async def _expire(self, session_id: str) -> None:
        if session_id in self.sessions:
            await self.close(session_id)

    async def shutdown(self) -> None:
        for sid in list(self.sessions):
            await self.close(sid)
        if self._http is not None:
            await self._http.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ one call

    async def _handle(self, s: _Session, request: web.Request) -> web.StreamResponse:
        if s.closed:
            return _error(401, "invalid_api_key", "this attempt's LLM session has ended")
        auth = request.headers.get("Authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("api-key", "")
        if not hmac.compare_digest(given.encode(), s.token.encode()):
            return _error(401, "invalid_api_key", "wrong or missing API key: use the OPENAI_API_KEY this attempt was given")
        path = request.path[3:] if request.path.startswith("/v1/") else request.path
        if request.method == "GET" and path == "/models":
            return await self._models(s)
        if request.method != "POST" or path not in ENDPOINTS:
            return _error(404, "not_found", f"{request.method} {request.path} is not served here; the gateway serves "
                          "POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses and GET /v1/models")
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return _error(400, "invalid_request_error", "the request body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _error(400, "invalid_request_error", "the request needs a `model` (a string)")
        model: str = body["model"]
        allowed = s.spec.models
        if allowed is not None and model not in allowed:
            return _error(400, "model_not_allowed", f"model {model!r} is not allowed for this agent; allowed: {', '.join(allowed)}")
        hit = s.limit_hit()
        if hit is not None:
            s.usage.limit_reached = s.usage.limit_reached or hit[0]
            s.write({"time": _now(), "endpoint": path, "model": model, "status": 429, "error": hit[1], "request": body})
            return _error(429, "llm_limit_reached", f"harness: {hit[1]} for this attempt", code=hit[0])
        stream = bool(body.get("stream")) and path != "/embeddings"
        if stream and path != "/responses":  # the Responses API reports usage in its last event anyway
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return await self._forward(s, request, path, body, model, stream)

    async def _upstream(self, s: _Session, path: str, body: dict[str, Any]) -> tuple[Any, int, Optional[str]]:
        """POST with retries; returns (open response or None, tries, last error)."""
        p = s.spec.provider
        headers = {"Content-Type": "application/json"}
        if p.api_key:
            headers["Authorization"] = f"Bearer {p.api_key}"
        data = json.dumps(body).encode()
        err: Optional[str] = None
        for attempt in range(p.retries + 1):
            wait = p.backoff_s * 2**attempt
            try:
                resp = await self._client().post(p.base_url + path, data=data, headers=headers,
                                                 timeout=ClientTimeout(total=p.timeout_s, sock_connect=min(30.0, p.timeout_s)))
            except (ClientError, asyncio.TimeoutError, OSError) as e:
                err = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            else:
                if resp.status not in _RETRY_STATUSES:
                    return resp, attempt + 1, None
                text = (await resp.read())[:300].decode(errors="replace")
                resp.release()
                err = f"HTTP {resp.status}: {text}"
                after = resp.headers.get("Retry-After", "")
                if after.replace(".", "", 1).isdigit():
                    wait = max(wait, min(float(after), 60.0))
            if attempt < p.retries:
                await asyncio.sleep(wait)
        return None, p.retries + 1, err

    async def _forward(self, s: _Session, request: web.Request, path: str, body: dict[str, Any], model: str,
                       stream: bool) -> web.StreamResponse:
        t0 = time.monotonic()
        entry: dict[str, Any] = {"time": _now(), "endpoint": path, "model": model, "stream": stream, "request": body}
        resp, tries, err = await self._upstream(s, path, body)
        entry["tries"] = tries
        if resp is None:
            s.usage.failed_calls += 1
            s.usage.provider_down = f"{s.spec.provider.base_url}: {err} (after {tries} tries)"
            entry.update(status=502, provider_status=None, error=err, latency_s=time.monotonic() - t0)
            s.write(entry)
            return _error(502, "provider_unavailable", f"harness: the LLM provider failed {tries} times: {err}")
        entry["provider_status"] = resp.status
        s.usage.provider_down = None  # it answered: it does not *stay* down (failed tries are in failed_calls)
        try:
            if stream and resp.status == 200:
                return await self._relay_stream(s, request, resp, entry, body, model, t0)
            raw = await resp.read()
        except (ClientError, asyncio.TimeoutError) as e:
            s.usage.failed_calls += 1
            entry.update(status=502, error=f"{type(e).__name__}: {e}", latency_s=time.monotonic() - t0)
            s.write(entry)
            return _error(502, "provider_unavailable", f"harness: the LLM provider broke off the answer: {type(e).__name__}")
        finally:
            resp.release()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = raw[:2000].decode(errors="replace")
        if resp.status == 200:
            usage = answer.get("usage") if isinstance(answer, dict) else None
            inp, out, estimated = _tokens(usage, body, answer)
            entry.update(usage=usage, usage_estimated=estimated, cost_usd=s.charge(model, inp, out))
        else:
            s.usage.failed_calls += 1
        entry.update(status=resp.status, response=answer, latency_s=time.monotonic() - t0)
        s.write(entry)
        return web.Response(body=raw, status=resp.status, content_type=resp.content_type or "application/json")

    async def _relay_stream(self, s: _Session, request: web.Request, resp: Any, entry: dict[str, Any],
                            body: dict[str, Any], model: str, t0: float) -> web.StreamResponse:
        """Pass server-sent events through as they come, reading usage and content on the way."""
        out = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await out.prepare(request)
        buf = b""
        usage: Optional[dict[str, Any]] = None
        text: list[str] = []
        tools: dict[int, dict[str, str]] = {}
        broken: Optional[str] = None
        try:
            async for chunk in resp.content.iter_any():
                await out.write(chunk)
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    usage = _read_event(line, text, tools) or usage
        except (ClientError, asyncio.TimeoutError) as e:
            broken = f"{type(e).__name__}: {e}"
        except ConnectionResetError:
            broken = "the agent closed the connection"
        usage = _read_event(buf, text, tools) or usage
        answer = {"content": "".join(text), "tool_calls": [tools[i] for i in sorted(tools)]}
        inp, out_tokens, estimated = _tokens(usage, body, answer)
        entry.update(status=200, usage=usage, usage_estimated=estimated, cost_usd=s.charge(model, inp, out_tokens),
                     response=answer, latency_s=time.monotonic() - t0, error=broken)
        s.write(entry)
        try:
            await out.write_eof()
        except ConnectionResetError:
            pass
        return out

    async def _models(self, s: _Session) -> web.Response:
        if s.spec.models is not None:
            return web.json_response({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "harness"}
                                                                  for m in s.spec.models]})
        p = s.spec.provider
        headers = {"Authorization": f"Bearer {p.api_key}"} if p.api_key else {}
        try:
            async with self._client().get(p.base_url + "/models", headers=headers, timeout=ClientTimeout(total=30)) as r:
                return web.Response(body=await r.read(), status=r.status, content_type=r.content_type or "application/json")
        except (ClientError, asyncio.TimeoutError, OSError) as e:
            return _error(502, "provider_unavailable", f"harness: the LLM provider did not answer: {type(e).__name__}")


def _read_event(line: bytes, text: list[str], tools: dict[int, dict[str, str]]) -> Optional[dict[str, Any]]:
    """One SSE line: adds content and tool-call deltas; returns the usage if the event carries it."""
    line = line.strip()
    if not line.startswith(b"data:"):
        return None
    data = line[5:].strip()
    if data == b"[DONE]":
        return None
    try:
        event = json.loads(data)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    for choice in event.get("choices") or []:
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            delta = {"content": choice.get("text")}  # /v1/completions streams `text`
        if isinstance(delta.get("content"), str):
            text.append(delta["content"])
        for call in delta.get("tool_calls") or []:
            slot = tools.setdefault(int(call.get("index", 0)), {"id": "", "name": "", "arguments": ""})
            fn = call.get("function") or {}
            slot["id"] = call.get("id") or slot["id"]
            slot["name"] += fn.get("name") or ""
            slot["arguments"] += fn.get("arguments") or ""
    usage = event.get("usage") or (event.get("response") or {}).get("usage")  # the Responses API: response.completed
    return usage if isinstance(usage, dict) else None


def _tokens(usage: Optional[dict[str, Any]], body: dict[str, Any], answer: Any) -> tuple[int, int, bool]:
    """(input, output, estimated): the provider's counts, else about 4 characters a token."""
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
        return int(usage["prompt_tokens"]), int(usage.get("completion_tokens") or 0), False
    if isinstance(usage, dict) and isinstance(usage.get("input_tokens"), int):  # the Responses API
        return int(usage["input_tokens"]), int(usage.get("output_tokens") or 0), False
    prompt = body.get("messages", body.get("prompt", body.get("input", "")))
    return len(json.dumps(prompt)) // 4 + 1, len(json.dumps(answer)) // 4 if answer else 0, True


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def copy_into_logs(src: Path, logs_dir: Path, name: str) -> None:
    """Copy `src` to `logs_dir/name` without following anything the agent left there: whatever
    sits at that name (a link, a FIFO, a directory) is moved aside, then the file is created anew."""
    dfd = os.open(logs_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        try:
            os.rename(name, f"{name}.agent-{secrets.token_hex(3)}", src_dir_fd=dfd, dst_dir_fd=dfd)
        except FileNotFoundError:
            pass
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dfd)
        with open(fd, "wb") as out, open(src, "rb") as f:
            shutil.copyfileobj(f, out)
    finally:
        os.close(dfd)


# ---------------------------------------------------------------------- the Ray actor

class GatewayActor:
    """The node's gateway in a Ray actor (async: every session's socket is served on its loop)."""

    def __init__(self) -> None:
        self.gateway = Gateway()

    async def open(self, spec: SessionSpec) -> SessionInfo:
        return await self.gateway.open(spec)

    async def close(self, session_id: str) -> LLMUsage:
        return await self.gateway.close(session_id)

    async def usage(self, session_id: str) -> LLMUsage:
        return self.gateway.usage(session_id)

    async def node(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())


def node_gateway() -> Any:
    """The calling node's gateway actor (started on first use, then found by name)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node_id = ray.get_runtime_context().get_node_id()
    actor_cls = ray.remote(GatewayActor)
    return actor_cls.options(
        name=f"harness-llm-gateway-{node_id[:16]}", namespace="harness", get_if_exists=True, lifetime="detached",
        num_cpus=0, max_concurrency=10_000, max_restarts=-1,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote()
