"""Who may see what on the dashboard.

`StoreAccess` is `harness view`: one local user, every run in the store, read-only.
`ServiceAccess` is the service's `/ui`: the service's bearer tokens (sent as a cookie that
the login form sets, or as an `Authorization` header), another user's run is not found,
and cancel/resume go through the service for the run's owner.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from harness.spec import RunState, utcnow
from harness.objstore import is_remote
from harness.store import RunStore, list_runs

if TYPE_CHECKING:
    from harness.serve.service import RunService

COOKIE = "harness_ui"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
LIVE = ("queued", "running")


class NotFound(LookupError):
    """What the page names does not exist for this user; the message says what to do instead."""


class ActionRefused(Exception):
    """A cancel/resume the server will not carry out; `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Progress:
    """A run as the pages show it: status (`interrupted` for a live status nobody drives),
    whether it is being executed now, attempts done/failed/total."""

    status: str
    live: bool
    done: int
    total: int
    failed: int
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def resumable(self) -> bool:
        return self.status in ("interrupted", "cancelled", "failed")


def _count_rows(rs: RunStore) -> int:
    try:
        return sum(1 for n in os.listdir(rs.attempts_dir) if n.endswith(".parquet") and not n.startswith("."))
    except OSError:
        return 0


class Access:
    """The store the pages read and the rules they follow. Subclasses decide users and actions."""

    read_only = True
    login_required = False

    def __init__(self, root: Path | str) -> None:
        self.root: Path | str = root if is_remote(root) else Path(root).expanduser().resolve()  # or an s3://... URI
        self._secret = os.urandom(32)

    # -- users
    def user(self, credential: Optional[str]) -> Optional[str]:
        """The user a credential (cookie or bearer token) belongs to, None when it is not valid."""
        return "local"

    def csrf_token(self, credential: Optional[str]) -> str:
        """The token state-changing forms carry: bound to this server process and the credential."""
        return hmac.new(self._secret, f"csrf:{credential or ''}".encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, credential: Optional[str], token: str) -> bool:
        return hmac.compare_digest(self.csrf_token(credential), token or "")

    # -- runs
    def visible(self, state: RunState, user: str) -> bool:
        return True

    def runs(self, user: str) -> list[RunState]:
        """The runs this user may see, newest first."""
        return [s for s in list_runs(self.root) if self.visible(s, user)]

    def run(self, run_id: str, user: str) -> tuple[RunStore, RunState]:
        """The run's store and state, or NotFound (also for another user's run)."""
        if not _RUN_ID.match(run_id) or ".." in run_id:
            raise NotFound(f"no run {run_id!r}")
        rs = RunStore(self.root, run_id)
        try:
            state = rs.read_state()
        except (KeyError, OSError, ValueError):
            raise NotFound(f"no run {run_id!r}") from None
        if not self.visible(state, user):
            raise NotFound(f"no run {run_id!r}")
        return rs, state

    def progress(self, rs: RunStore, state: RunState) -> Progress:
        live = self.is_live(state)
        status = state.status if live or state.status not in LIVE else "interrupted"
        done = _count_rows(rs) if state.status in LIVE else state.done
        end = utcnow() if live else state.updated_at
        return Progress(status=status, live=live, done=done, total=state.total, failed=state.failed,
                        elapsed_s=max(0.0, (end - state.created_at).total_seconds()))

    def is_live(self, state: RunState) -> bool:
        if state.status not in LIVE:
            return False
        if not state.driver:
            return state.status == "queued"
        from harness.orchestrator import driver_alive  # Ray loads only when a live run is asked about

        return driver_alive(state.driver)

    # -- actions
    def cancel(self, run_id: str, user: str) -> str:
        raise ActionRefused(403, "this dashboard is read-only (harness view); cancel with Ctrl-C where the run was started")

    def resume(self, run_id: str, user: str) -> str:
        raise ActionRefused(403, f"this dashboard is read-only (harness view); resume with `harness run --resume {run_id}`")


class StoreAccess(Access):
    """`harness view`: a store on this machine, one local user, read-only."""


class ServiceAccess(Access):
    """The service's dashboard: its tokens, its visibility rule, its cancel and resume."""

    read_only = False

    def __init__(self, service: "RunService") -> None:
        super().__init__(service.root)
        self.service = service

    @property
    def login_required(self) -> bool:  # type: ignore[override]
        return bool(self.service.tokens.enabled)

    def user(self, credential: Optional[str]) -> Optional[str]:
        if not self.service.tokens.enabled:
            from harness.serve.auth import LOCAL_USER  # service mode only (the standalone view has no users)

            return LOCAL_USER
        if not credential:
            return None
        return self.service.tokens.user_for(f"Bearer {credential}")

    def visible(self, state: RunState, user: str) -> bool:
        return not self.service.tokens.enabled or state.owner == user

    def progress(self, rs: RunStore, state: RunState) -> Progress:
        v = self.service.view(rs, state)
        return Progress(status=v.status, live=v.live, done=v.done, total=v.total, failed=v.failed, elapsed_s=v.elapsed_s)

    def is_live(self, state: RunState) -> bool:
        return bool(self.service.liveness(state))

    def _act(self, action: str, run_id: str, user: str) -> str:
        from harness.serve.service import APIError  # service mode only

        self.run(run_id, user)  # 404 for someone else's run, before anything else is said
        try:
            return str(self.service.cancel_run(run_id, user) if action == "cancel" else self.service.resume_run(run_id, user))
        except APIError as e:
            raise ActionRefused(e.status, e.message) from None

    def cancel(self, run_id: str, user: str) -> str:
        return self._act("cancel", run_id, user)

    def resume(self, run_id: str, user: str) -> str:
        self._act("resume", run_id, user)
        return "queued"
