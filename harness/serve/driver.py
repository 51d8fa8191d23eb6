"""RunDriver: the detached Ray actor that executes one run with `harness.run()`.

One actor per run, named after the run in the `harness` namespace, so any
server process (including one started after a restart) can find it to cancel
it or to tell a live run from one cut off by a crash. It holds no state the
store does not: when it dies the run reads as `interrupted` and can be resumed.
"""

from __future__ import annotations

import threading
from typing import Optional

from harness.spec import RunSpec

NAMESPACE = "harness"


def actor_name(run_id: str) -> str:
    return f"run:{run_id}"


class RunDriver:
    """Threaded actor (max_concurrency > 1) so `cancel` runs while `execute` blocks."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()

    def execute(self, store: str, run_id: str, owner: Optional[str], spec: Optional[RunSpec]) -> str:
        """Run (a validated RunSpec given) or resume (None) `run_id`; returns the final status.
        The actor exits afterwards, which frees its name."""
        import harness
        from harness.store import RunStore

        status = "failed"
        try:
            if spec is None:
                result = harness.run(store=store, resume=run_id, cancel_event=self.cancel_event)
            else:
                result = harness.run(spec, store=store, run_id=run_id, owner=owner, cancel_event=self.cancel_event)
            status = result.status
        except KeyboardInterrupt:
            status = "cancelled"  # harness.run already recorded it; resumable
        except BaseException as e:  # noqa: BLE001  (recorded in run.json, never lost)
            rs = RunStore(store, run_id)
            state = rs.read_state()
            if state.status == "queued":  # harness.run refused before it started: say why
                state.status, state.error = "failed", f"{type(e).__name__}: {e}"
                rs.write_state(state)
            status = state.status
        finally:
            threading.Thread(target=_exit_soon, daemon=True).start()
        return status

    def cancel(self) -> None:
        self.cancel_event.set()

    def ping(self) -> bool:
        return True


def _exit_soon() -> None:
    """Leave once `execute` has returned its value (a detached actor lives until told otherwise)."""
    import time

    import ray

    time.sleep(0.5)
    ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
