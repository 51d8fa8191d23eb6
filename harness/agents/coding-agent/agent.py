"""coding-agent: an LLM with two tools (`bash`, `write_file`) in a loop, until the model stops
calling tools with a valid submission, or the step, token or time budget runs out.

Standard library only. Talks to $OPENAI_BASE_URL with $OPENAI_API_KEY (inside harness: the
gateway's forwarder and a per-attempt token). Settings come from $HARNESS_AGENT_KWARGS (the
variant's `kwargs`); the model from $HARNESS_LLM_MODEL (`--model`) or $OPENAI_MODEL.
Writes $LOGS_DIR/trajectory.json (harness-trajectory/1) after every step.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

SYSTEM = """You are an expert machine-learning engineer working alone in a Linux sandbox without internet.
Solve the task in the user's message. Use the tools: `write_file` to write code (keep it in {code}),
`bash` to run commands (e.g. `python3 {code}/solve.py`) and read their output. Look at the data first,
fix errors you see, write the predictions to {submission}/submission.csv and check them with
`{validate}`. When the submission is valid, answer without calling a tool to finish."""

TOOLS = [
    {"type": "function", "function": {
        "name": "bash", "description": "Run a shell command (working directory: the code folder); returns its exit code and output.",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}},
    {"type": "function", "function": {
        "name": "write_file", "description": "Write a text file (created or replaced).",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                       "required": ["path", "content"]}}},
]


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


class LLMError(Exception):
    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status, self.code = status, code


class Agent:
    def __init__(self) -> None:
        self.kw: dict[str, Any] = json.loads(os.environ.get("HARNESS_AGENT_KWARGS") or "{}")
        self.base = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
        self.key = os.environ.get("OPENAI_API_KEY", "")
        self.model = os.environ.get("HARNESS_LLM_MODEL") or os.environ.get("OPENAI_MODEL") or self.kw.get("model") or "gpt-4o-mini"
        self.data = Path(os.environ.get("DATA_DIR", "/home/data"))
        self.code = Path(os.environ.get("CODE_DIR", "/home/code"))
        self.submission = Path(os.environ.get("SUBMISSION_DIR", "/home/submission"))
        self.logs = Path(os.environ.get("LOGS_DIR", "/home/logs"))
        self.instructions = Path(os.environ.get("INSTRUCTIONS", "/home/instructions.md"))
        self.validate_cmd = os.environ.get("VALIDATE_SUBMISSION", "/home/validate_submission.sh")
        self.max_steps = int(self.kw.get("max_steps", 40))
        self.max_tokens = int(self.kw.get("max_tokens", 0)) or None
        self.step_timeout = float(self.kw.get("step_timeout_s", 600))
        self.max_output = int(self.kw.get("max_output_chars", 8000))
        self.stream = bool(self.kw.get("stream", False))
        self.deadline = time.monotonic() + float(os.environ.get("TIME_LIMIT_SECS", 3600)) * 0.9
        self.tokens_used = 0
        self.steps: list[dict[str, Any]] = []
        self.started = now()
        self.outcome: dict[str, Any] = {"submission": False, "valid": None, "reason": "", "steps": 0}

    # ---------------------------------------------------------------- the rollout

    def record(self, role: str, content: Optional[str], **extra: Any) -> None:
        step = {"index": len(self.steps), "role": role, "content": content, "started_at": extra.pop("started_at", now()),
                "ended_at": now(), **{k: v for k, v in extra.items() if v is not None}}
        self.steps.append(step)
        self.save()

    def save(self) -> None:
        traj = {"format": "harness-trajectory/1", "agent": os.environ.get("HARNESS_AGENT_ID", "coding-agent"),
                "attempt_id": os.environ.get("HARNESS_ATTEMPT_ID"), "competition_id": os.environ.get("COMPETITION_ID"),
                "model": self.model, "settings": {**self.kw, "max_steps": self.max_steps, "stream": self.stream},
                "started_at": self.started, "ended_at": now(), "steps": self.steps,
                "outcome": {**self.outcome, "steps": sum(1 for s in self.steps if s["role"] == "assistant")}}
        self.logs.mkdir(parents=True, exist_ok=True)
        tmp = self.logs / ".trajectory.json.tmp"
        tmp.write_text(json.dumps(traj, indent=1))
        os.replace(tmp, self.logs / "trajectory.json")

    # ---------------------------------------------------------------- the model

    def chat(self, messages: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "tools": TOOLS,
                                "temperature": self.kw.get("temperature", 0.2)}
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        req = urllib.request.Request(f"{self.base}/chat/completions", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"})
        try:
            resp = urllib.request.urlopen(req, timeout=max(30.0, self.deadline - time.monotonic()))
        except urllib.error.HTTPError as e:
            raw = e.read().decode(errors="replace")
            try:
                err = json.loads(raw).get("error") or {}
            except ValueError:
                err = {"message": raw[:300]}
            raise LLMError(e.code, str(err.get("message", raw[:300])), str(err.get("code") or err.get("type") or "")) from None
        except (urllib.error.URLError, OSError) as e:
            raise LLMError(0, f"cannot reach the LLM at {self.base}: {e}") from None
        with resp:
            if not self.stream:
                answer = json.loads(resp.read())
                u = answer.get("usage") or {}
                return answer["choices"][0]["message"], {"input": u.get("prompt_tokens", 0), "output": u.get("completion_tokens", 0)}
            return self._read_stream(resp)

    def _read_stream(self, resp: Any) -> tuple[dict[str, Any], dict[str, int]]:
        text, calls, usage = [], {}, {}
        for raw in resp:
            line = raw.decode(errors="replace").strip()
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            event = json.loads(line[5:])
            usage = event.get("usage") or usage
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    text.append(delta["content"])
                for c in delta.get("tool_calls") or []:
                    slot = calls.setdefault(c.get("index", 0), {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
                    slot["id"] = c.get("id") or slot["id"]
                    fn = c.get("function") or {}
                    slot["function"]["name"] += fn.get("name") or ""
                    slot["function"]["arguments"] += fn.get("arguments") or ""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
        if calls:
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        return message, {"input": usage.get("prompt_tokens", 0), "output": usage.get("completion_tokens", 0)}

    # ---------------------------------------------------------------- the tools

    def run_tool(self, name: str, args: dict[str, Any]) -> str:
        if name == "write_file":
            path = Path(str(args.get("path", "")))
            path = path if path.is_absolute() else self.code / path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(args.get("content", "")))
            return f"wrote {len(str(args.get('content', '')))} characters to {path}"
        if name == "bash":
            timeout = max(5.0, min(self.step_timeout, self.deadline - time.monotonic()))
            try:
                p = subprocess.run(["/bin/sh", "-c", str(args.get("command", ""))], cwd=self.code, capture_output=True,
                                   text=True, timeout=timeout, errors="replace")
            except subprocess.TimeoutExpired:
                return f"timed out after {timeout:.0f}s"
            return f"exit code {p.returncode}\n" + self.cut(p.stdout + p.stderr)
        return f"unknown tool {name!r}; use bash or write_file"

    def cut(self, text: str) -> str:
        n = self.max_output
        return text if len(text) <= n else text[: n // 2] + f"\n... [{len(text) - n} characters cut] ...\n" + text[-n // 2:]

    def validate(self) -> tuple[bool, str]:
        if not (self.submission / "submission.csv").exists() and os.environ.get("HARNESS_TASK_KIND") != "technique":
            return False, f"no {self.submission}/submission.csv yet"
        p = subprocess.run(["/bin/sh", "-c", self.validate_cmd], capture_output=True, text=True, errors="replace")
        return p.returncode == 0, (p.stdout + p.stderr).strip()[-2000:]

    # ---------------------------------------------------------------- the loop

    def solve(self) -> int:
        self.code.mkdir(parents=True, exist_ok=True)
        files = sorted(str(p.relative_to(self.data)) for p in self.data.rglob("*") if p.is_file())[:50]
        task = self.instructions.read_text() if self.instructions.is_file() else "Solve the task in /home/data."
        system = SYSTEM.format(code=self.code, submission=self.submission, validate=self.validate_cmd)
        user = f"{task}\n\nFiles in {self.data}: {', '.join(files)}"
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        self.record("system", system)
        self.record("user", user)
        for _ in range(self.max_steps):
            if time.monotonic() > self.deadline:
                return self.finish("time budget spent")
            if self.max_tokens and self.tokens_used >= self.max_tokens:
                return self.finish(f"token budget of {self.max_tokens} spent")
            t0 = now()
            try:
                message, tokens = self.chat(messages)
            except LLMError as e:
                self.record("assistant", None, started_at=t0, error={"status": e.status, "code": e.code, "message": str(e)})
                if e.status == 429 and e.code in ("tokens", "cost_usd", "calls"):
                    return self.finish(f"LLM limit reached ({e.code}): {e}")
                print(f"coding-agent: LLM call failed: HTTP {e.status}: {e}", file=sys.stderr)
                return self.finish(f"LLM unavailable: {e}", code=3)
            self.tokens_used += tokens["input"] + tokens["output"]
            calls = message.get("tool_calls") or []
            messages.append({"role": "assistant", "content": message.get("content"), **({"tool_calls": calls} if calls else {})})
            self.record("assistant", message.get("content"), started_at=t0, tokens=tokens,
                        tool_calls=[{"id": c.get("id", ""), "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                                    for c in calls])
            if not calls:
                ok, why = self.validate()
                if ok:
                    return self.finish("the model finished with a valid submission")
                note = f"The submission is not valid yet: {why}. Fix it."
                messages.append({"role": "user", "content": note})
                self.record("user", note)
                continue
            for c in calls:
                t1 = now()
                try:
                    args = json.loads(c["function"]["arguments"] or "{}")
                    result = self.run_tool(c["function"]["name"], args if isinstance(args, dict) else {})
                except (ValueError, OSError) as e:
                    result = f"error: {type(e).__name__}: {e}"
                print(f"[{c['function']['name']}] {result[:300]}", flush=True)
                messages.append({"role": "tool", "tool_call_id": c.get("id", ""), "content": result})
                self.record("tool", result, started_at=t1, tool_call_id=c.get("id", ""))
        return self.finish(f"step budget of {self.max_steps} spent")

    def finish(self, reason: str, code: int = 0) -> int:
        ok, why = self.validate()
        self.outcome.update(submission=(self.submission / "submission.csv").exists(), valid=ok, reason=reason)
        self.save()
        print(f"coding-agent: {reason}; validation: {why}", flush=True)
        return code or (0 if ok else 1)


if __name__ == "__main__":
    sys.exit(Agent().solve())
