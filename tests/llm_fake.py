"""A scripted OpenAI-compatible server for tests and benchmarks (an LLM cannot run here;
this is the one fake the tests use). Real HTTP on 127.0.0.1, real threads.

The reply to a chat request is `script[n]`, n = the number of assistant messages already in the
request, so one script drives a whole conversation without state. A script entry is either a
string (the assistant's text) or {"tool": name, "arguments": {...}} (one tool call).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

FAKE_KEY = "sk-real-provider-key-0123456789abcdef"


class FakeOpenAI:
    """Start with `with FakeOpenAI(script) as fake: fake.url`. `fail_first` answers 500 to that many
    requests first; `down` answers 500 always; `usage=False` leaves usage out of answers."""

    def __init__(self, script: Optional[list[Any]] = None, *, model: str = "gpt-4o-mini", fail_first: int = 0,
                 down: bool = False, usage: bool = True, key: str = FAKE_KEY,
                 responder: Optional[Callable[[str, dict[str, Any]], Any]] = None) -> None:
        self.script = script or ["done"]
        self.responder = responder  # (path, body) -> a script entry, instead of the script
        self.model = model
        self.fail_first = fail_first
        self.down = down
        self.usage = usage
        self.key = key
        self.requests: list[dict[str, Any]] = []
        self.auth_seen: set[str] = set()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._send(200, {"object": "list", "data": [{"id": fake.model, "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with fake.lock:
                    fake.requests.append(body)
                    fake.auth_seen.add(self.headers.get("Authorization", ""))
                    failing = fake.down or fake.fail_first > 0
                    if fake.fail_first > 0:
                        fake.fail_first -= 1
                if self.headers.get("Authorization") != f"Bearer {fake.key}":
                    return self._send(401, {"error": {"message": "bad key", "type": "invalid_api_key"}})
                if failing:
                    return self._send(500, {"error": {"message": "the fake provider is down", "type": "server_error"}})
                if self.path.endswith("/embeddings"):
                    return self._send(200, {"object": "list", "data": [{"embedding": [0.1, 0.2], "index": 0}],
                                            "usage": {"prompt_tokens": 5, "total_tokens": 5}})
                turn = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
                if fake.responder is not None:
                    with fake.lock:
                        entry = fake.responder(self.path, body)
                else:
                    entry = fake.script[min(turn, len(fake.script) - 1)]
                if self.path.endswith("/responses"):
                    return self._send(200, fake.response_object(entry))
                message: dict[str, Any] = {"role": "assistant", "content": None}
                if isinstance(entry, dict):
                    message["tool_calls"] = [{"id": f"call_{turn}", "type": "function",
                                              "function": {"name": entry["tool"], "arguments": json.dumps(entry["arguments"])}}]
                else:
                    message["content"] = entry
                prompt_tokens = 100 + 10 * len(body.get("messages", []))
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 20, "total_tokens": prompt_tokens + 20}
                if body.get("stream"):
                    return self._stream(message, usage if fake.usage and (body.get("stream_options") or {}).get("include_usage") else None)
                answer = {"id": f"chatcmpl-{turn}", "object": "chat.completion", "created": int(time.time()), "model": fake.model,
                          "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if isinstance(entry, dict) else "stop"}]}
                if fake.usage:
                    answer["usage"] = usage
                self._send(200, answer)

            def _stream(self, message: dict[str, Any], usage: Optional[dict[str, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                text = message.get("content") or ""
                chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": text[i:i + 4]}}]}
                          for i in range(0, len(text), 4)]
                for c in message.get("tool_calls") or []:
                    chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": c["id"], "type": "function",
                                                                                      "function": c["function"]}]}}]})
                if usage:
                    chunks.append({"choices": [], "usage": usage})
                for c in chunks:
                    self.wfile.write(f"data: {json.dumps(c)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def response_object(self, entry: Any) -> dict[str, Any]:
        """A Responses API answer (what the OpenAI SDK sends OpenAI model names to)."""
        if isinstance(entry, dict):
            item: dict[str, Any] = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": entry["tool"],
                                    "arguments": json.dumps(entry["arguments"]), "status": "completed"}
        else:
            item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": entry, "annotations": []}]}
        return {"id": "resp_1", "object": "response", "created_at": int(time.time()), "model": self.model, "status": "completed",
                "output": [item], "parallel_tool_calls": False, "tool_choice": "auto", "tools": [],
                "usage": {"input_tokens": 300, "output_tokens": 50, "total_tokens": 350}}

    def __enter__(self) -> "FakeOpenAI":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
