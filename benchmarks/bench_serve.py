"""GET /runs/{id} through Ray Serve vs the same FastAPI app on bare uvicorn.

    python benchmarks/bench_serve.py [--clients 16] [--seconds 8] [--max-requests 20000] [--rounds 4]

Records one real run (dummy agent, lite breast-cancer-diagnosis) in a temporary
store, serves the store with the Serve deployment exactly as `harness serve` starts
it (its own local Ray; the replica answers HTTP on the API's port from a uvicorn in
its own process, `serve.app.serve_http`), and with `serve.app.create_app` under
plain uvicorn in a subprocess, and hits
`GET /runs/{id}` from `--clients` concurrent keep-alive clients on loopback for at
most `--seconds` or `--max-requests` per server, the servers one after the other in
one run. Prints requests/s and p50/p99 latency side by side and the ratio to bare
uvicorn. Both servers answer from the same handler and store. A third line goes
through Serve's HTTP proxy (still up on another loopback port), the path every
request took before: the price of the proxy -> replica hop.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int, path: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered 200 on 127.0.0.1:{port}{path} within {timeout:g}s")


def load(port: int, path: str, clients: int, seconds: float, max_requests: int) -> dict[str, Any]:
    """`clients` threads, each with one keep-alive connection, GET `path` until the time or count
    budget is spent. Returns req/s, p50/p99 latency (ms), the count of non-200 answers, and the raw
    latencies (s) and elapsed time (s) for `combine`."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    budget = [max_requests]
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        bad = 0
        start_gate.wait()
        while time.monotonic() < stop_at[0]:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            t0 = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t0)
            bad += resp.status != 200
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.monotonic() + seconds
    t0 = time.perf_counter()
    start_gate.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50_ms": q[49] * 1e3,
            "p99_ms": q[98] * 1e3, "errors": errors[0], "latencies": latencies, "elapsed": elapsed}


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several rounds of `load` against the same server: total requests over total time,
    percentiles over every latency."""
    latencies = sorted(x for r in rounds for x in r["latencies"])
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    elapsed = sum(r["elapsed"] for r in rounds)
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3,
            "errors": sum(r["errors"] for r in rounds)}


def bare_server(port: int, store: str) -> None:
    """The same app and handler as the Serve deployment, under one uvicorn process."""
    import uvicorn

    from harness.serve.app import create_app
    from harness.serve.auth import TokenTable
    from harness.serve.service import RunService

    uvicorn.run(create_app(RunService(store, TokenTable(None))), host="127.0.0.1", port=port,
                log_level="warning", access_log=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=8.0, help="time budget per server")
    ap.add_argument("--max-requests", type=int, default=20000, help="request budget per server")
    ap.add_argument("--rounds", type=int, default=4,
                    help="the budgets are split into this many rounds, the servers taking turns, so that load "
                         "from other jobs on the machine falls on all of them alike")
    ap.add_argument("--bare-server", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--store", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_server is not None:
        bare_server(args.bare_server, args.store)
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    for name in ("data", "runs", "work"):
        (tmp / name).mkdir()
        os.environ[f"HARNESS_{name.upper()}_DIR"] = str(tmp / name)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    import harness
    from harness.serve.app import start, stop

    bare = None
    try:
        serve_port, bare_port = free_port(), free_port()
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        t0 = time.monotonic()
        run = harness.run(["breast-cancer-diagnosis"], agent="dummy", lite=True, store=tmp / "runs")
        print(f"recorded run {run.run_id} ({run.status}) in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        path = f"/runs/{run.run_id}"

        bare = subprocess.Popen([sys.executable, __file__, "--bare-server", str(bare_port), "--store", str(tmp / "runs")])
        t0 = time.monotonic()
        start("127.0.0.1", serve_port, store=str(tmp / "runs"))
        print(f"Serve up in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        from ray.serve.context import _get_global_client

        proxy_port = int(_get_global_client().http_config.port)  # type: ignore[union-attr]
        for port in (serve_port, proxy_port, bare_port):
            wait_up(port, path)

        servers = (("harness serve", serve_port), ("FastAPI + uvicorn", bare_port), ("via Serve's proxy", proxy_port))
        for _, port in servers:
            load(port, path, args.clients, 1.0, 200)  # warm up connections and code paths
        load_before = os.getloadavg()[0]
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in servers}
        for _ in range(args.rounds):
            for name, port in servers:
                rounds[name].append(load(port, path, args.clients, args.seconds / args.rounds,
                                         max(1, args.max_requests // args.rounds)))
        results = {name: combine(rs) for name, rs in rounds.items()}

        b = results["FastAPI + uvicorn"]
        print(f"\nGET /runs/{{id}} · {args.clients} concurrent keep-alive clients · loopback · "
              f"≤{args.seconds:g}s or ≤{args.max_requests} requests per server in {args.rounds} alternating rounds · "
              f"{os.cpu_count()} CPUs, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")
        print(f"{'server':<20}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-200':>9}{'req/s vs bare':>15}")
        for name, r in results.items():
            print(f"{name:<20}{r['requests']:>10.0f}{r['rps']:>10.1f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
                  f"{r['errors']:>9.0f}{r['rps'] / b['rps']:>14.2f}x")
        s = results["harness serve"]
        print(f"harness serve / bare uvicorn: {s['rps'] / b['rps']:.2f}x the requests/s, p99 {s['p99_ms']:.0f} ms "
              f"(target: >= 0.5x, p99 < 100 ms)")
    finally:
        if bare is not None:
            bare.terminate()
            bare.wait(timeout=30)
        try:
            stop()
        except Exception:
            pass
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
