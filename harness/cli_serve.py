"""The body of `harness serve` (its options are declared in harness/cli.py, which imports this module,
and with it Ray Serve, only for that command).

Starts the API (harness.serve.app.start), then watches it: when its Ray or its HTTP listener is
gone the process exits with status 3 so a supervisor restarts it; SIGTERM or Ctrl-C shut Serve
and the embedded Ray down and exit 0. Runs the service started and a dead server left unfinished
are resumed by the next server on the same store (harness.serve.service.RunService.resume_orphans).
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType
from typing import Optional

from harness.cli_common import USER_ERRORS, console, fail
from harness.objstore import shown_store
from harness.serve.app import ServiceConfigError, start
from harness.serve.life import EXIT_GONE, Watchdog, embedded_node, exit_now, shutdown
from harness.store import open_store

#: seconds between two checks of the watchdog
CHECK_PERIOD_S = 1.0


class _Stop(Exception):
    """SIGTERM (or SIGINT) arrived."""


def _raise_stop(signum: int, _frame: Optional[FrameType]) -> None:
    raise _Stop(signal.Signals(signum).name)


def serve(host: str, port: int, address: Optional[str], store: Optional[str], max_runs_per_user: int) -> None:
    """Serve the API on host:port until SIGTERM / Ctrl-C (exit 0) or until its Ray or HTTP listener
    is gone (exit 3). Bad configuration (tokens, port in use, a Ray that refuses this client) is one
    line on stderr and exit 2."""
    try:
        open_store(store)  # an object store that cannot be read fails here, in one line
    except USER_ERRORS as e:
        fail(e)
    started = False
    try:
        url = start(host, port, store=str(store) if store else None, max_runs_per_user=max_runs_per_user, address=address)
        started = True
        signal.signal(signal.SIGTERM, _raise_stop)  # after Ray's start: its core worker installs its own handler
        signal.signal(signal.SIGINT, _raise_stop)
        console.print(f"harness API at {url} · docs {url}/docs · runs in {shown_store(store or 'runs')} · Ctrl-C stops it")
        sys.stdout.write(url + "\n")
        sys.stdout.flush()
        watch = Watchdog(host, port)
        while True:
            time.sleep(CHECK_PERIOD_S)
            problem = watch.check()
            if problem:
                break
    except ServiceConfigError as e:
        shutdown(serve_too=False)
        fail(e)
    except (RuntimeError, OSError) as e:  # Serve could not deploy the app (a store it cannot write, a port taken meanwhile)
        if started:
            raise
        shutdown(serve_too=False)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        fail(f"the service did not start: {first[:300]}; check --store and --port, then start it again")
    except (_Stop, KeyboardInterrupt) as e:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop at a time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        embedded = embedded_node() is not None
        console.print(f"{str(e) or 'SIGINT'}: shutting down Serve and Ray")
        shutdown(serve_too=started)
        console.print("stopped; " + ("the runs it was driving resume when `harness serve` starts again on this store"
                                     if embedded else "runs in progress keep going in their actors on the cluster"))
        exit_now(0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # nothing interrupts the shutdown on the way out
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    console.print(f"error: {problem}; exiting with status {EXIT_GONE} so a supervisor restarts the server",
                  style="red", markup=False, highlight=False, soft_wrap=True)
    shutdown(serve_too=watch.ray_problem() is None)
    exit_now(EXIT_GONE)
