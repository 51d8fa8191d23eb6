"""RunDriver: the detached Ray actor that executes one run with `harness.run()`.

One actor per run, named after the run in the `harness` namespace, so any
server process (including one started after a restart) can find it to cancel
it or to tell a live run from one cut off by a crash. It holds no state the
store does not: when it dies the run reads as `interrupted` and can be resumed.
"""

from __future__ import annotations

import os
import threading
from typing import Optional, Sequence

from harness.spec import RunSpec

NAMESPACE = "harness"


def actor_name(run_id: str) -> str:
    return f"run:{run_id}"


class RunDriver:
    """Threaded actor (max_concurrency > 1) so `cancel` runs while `execute` blocks."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()

    def execute(self, store: str, run_id: str, owner: Optional[str], spec: Optional[RunSpec],
                agent_paths: Sequence[str] = ()) -> str:
        """Run (a validated RunSpec given) or resume (None) `run_id`; returns the final status.
        `agent_paths`: agent folders to find the agent in first (the server's own, a user's upload).
        The actor exits afterwards, which frees its name."""
        import harness
        from harness.errors import DrivenElsewhere
        from harness.store import RunStore

        if agent_paths:  # this process is the run's alone: harness.run and its workers read it from here
            known = [p for p in os.environ.get("HARNESS_AGENTS_PATH", "").split(os.pathsep) if p]
            os.environ["HARNESS_AGENTS_PATH"] = os.pathsep.join([*agent_paths, *known])

        status = "failed"
        try:
            if spec is None:
                result = harness.run(store=store, resume=run_id, cancel_event=self.cancel_event)
            else:
                result = harness.run(spec, store=store, run_id=run_id, owner=owner, cancel_event=self.cancel_event)
            status = result.status
        except KeyboardInterrupt:
            status = "cancelled"  # harness.run already recorded it; resumable
        except DrivenElsewhere:  # a live driver outside this Ray took it up first: it is that driver's run
            state = RunStore(store, run_id).read_state()
            if state.status == "queued":
                state.status, state.error = "running", None
                RunStore(store, run_id).write_state(state)
            status = state.status
        except BaseException as e:  # noqa: BLE001  (recorded in run.json, never lost)
            rs = RunStore(store, run_id)
            state = rs.read_state()
            if state.status == "queued":  # harness.run refused before it started: say why
                state.status, state.error = "failed", f"{type(e).__name__}: {e}"
                rs.write_state(state)
            status = state.status
        finally:
            _write_eval(store, run_id)
            threading.Thread(target=_exit_soon, daemon=True).start()
        return status

    def cancel(self) -> None:
        self.cancel_event.set()

    def ping(self) -> bool:
        return True


def _write_eval(store: str, run_id: str) -> None:
    """The run's eval/ metrics files, so they are on disk without anyone asking for a summary."""
    from harness.serve.eval_files import write_eval_dir
    from harness.store import RunStore

    try:
        write_eval_dir(RunStore(store, run_id))
    except Exception:  # noqa: BLE001  (the summary rewrites them; the run's status matters more)
        pass


def _exit_soon() -> None:
    """Leave once `execute` has returned its value (a detached actor lives until told otherwise)."""
    import time

    import ray

    time.sleep(0.5)
    ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
