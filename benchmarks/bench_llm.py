"""The LLM gateway's cost per call: the same chat completion against the scripted fake provider
on loopback, sent directly and through the path an agent's call takes (client -> the in-sandbox
forwarder on 127.0.0.1 -> the attempt's Unix socket -> the gateway -> the provider); then
calls/s with 8 attempts calling at once, each through its own session and forwarder.

    PYTHONPATH=. python3 benchmarks/bench_llm.py [--calls 400] [--seconds 5]

Prints the added latency at p50 and p90 (target: under 5 ms at p50) and the throughputs.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.llm.gateway import Gateway  # noqa: E402
from harness.llm.models import ProviderConfig, SessionInfo, SessionSpec  # noqa: E402
from tests.llm_fake import FAKE_KEY, FakeOpenAI  # noqa: E402

BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})


def call(conn: http.client.HTTPConnection, path: str, token: str) -> float:
    t0 = time.perf_counter()
    conn.request("POST", path, BODY, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    assert r.status == 200, r.status
    return time.perf_counter() - t0


def latencies(host: str, port: int, path: str, token: str, n: int) -> list[float]:
    conn = http.client.HTTPConnection(host, port)
    for _ in range(20):  # warm up: connections, pools
        call(conn, path, token)
    out = [call(conn, path, token) for _ in range(n)]
    conn.close()
    return out


def throughput(targets: list[tuple[int, str, str]], seconds: float) -> float:
    """Calls/s summed over one client thread per (port, path, token), each calling back to back."""
    counts = [0] * len(targets)
    stop = time.monotonic() + seconds

    def work(i: int, port: int, path: str, token: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while time.monotonic() < stop:
            call(conn, path, token)
            counts[i] += 1

    threads = [threading.Thread(target=work, args=(i, *t)) for i, t in enumerate(targets)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - t0)


def _gateway_process(conn: Any) -> None:
    """The gateway in a process of its own, as in production (the node's Ray actor: same code, same loop)."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    gateway = Gateway()
    while True:
        op, arg = conn.recv()
        if op == "stop":
            asyncio.run_coroutine_threadsafe(gateway.shutdown(), loop).result()
            conn.send(None)
            return
        conn.send(asyncio.run_coroutine_threadsafe(getattr(gateway, op)(arg), loop).result())


class GatewayProcess:
    def __init__(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_gateway_process, args=(child,), daemon=True)
        self.proc.start()

    def call(self, op: str, arg: Any = None) -> Any:
        self.conn.send((op, arg))
        return self.conn.recv()


def forwarder(info: SessionInfo) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "harness.llm.forwarder", "--socket",
                             str(Path(info.socket_dir) / info.socket_name), "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, int(url.rsplit(":", 1)[1].split("/")[0])


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[int(q * (len(xs) - 1))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    with FakeOpenAI(["hi"]) as fake:
        port = int(fake.url.split(":")[2].split("/")[0])
        gw = GatewayProcess()
        logs = Path(tempfile.mkdtemp(prefix="bench-llm-"))
        provider = ProviderConfig(base_url=fake.url, api_key=FAKE_KEY)
        sessions = [gw.call("open", SessionSpec(attempt_id=f"a{i}", provider=provider, logs_dir=str(logs / str(i))))
                    for i in range(8)]
        for i in range(8):
            (logs / str(i)).mkdir()
        procs = [forwarder(s) for s in sessions]
        try:
            direct = latencies("127.0.0.1", port, "/v1/chat/completions", FAKE_KEY, args.calls)
            via = latencies("127.0.0.1", procs[0][1], "/v1/chat/completions", sessions[0].token, args.calls)
            print(f"one call, {args.calls} sequential calls each (fake provider on loopback, keep-alive):")
            print(f"  direct                     p50 {pct(direct, .5):6.2f} ms   p90 {pct(direct, .9):6.2f} ms")
            print(f"  forwarder+socket+gateway   p50 {pct(via, .5):6.2f} ms   p90 {pct(via, .9):6.2f} ms")
            added = pct(via, .5) - pct(direct, .5)
            print(f"  added by the gateway path  p50 {added:6.2f} ms   p90 {pct(via, .9) - pct(direct, .9):6.2f} ms"
                  f"   (target < 5 ms at p50: {'met' if added < 5 else 'NOT met'})")
            d8 = throughput([(port, "/v1/chat/completions", FAKE_KEY)] * 8, args.seconds)
            g8 = throughput([(p, "/v1/chat/completions", s.token) for (_, p), s in zip(procs, sessions, strict=True)], args.seconds)
            print(f"8 concurrent attempts, {args.seconds:g} s each: direct {d8:7.0f} calls/s · through the gateway {g8:7.0f} calls/s"
                  f" ({g8 / d8:.2f}x)")
            usage = [gw.call("close", s.session_id) for s in sessions]
            counted = sum(u.calls for u in usage)
            print(f"gateway counted {counted} calls, {sum(u.input_tokens + u.output_tokens for u in usage)} tokens, "
                  f"${sum(u.cost_usd or 0 for u in usage):.4f}; machine load {Path('/proc/loadavg').read_text().split()[0]}")
        finally:
            for p, _ in procs:
                p.terminate()
                p.wait()
            gw.call("stop")


if __name__ == "__main__":
    main()
