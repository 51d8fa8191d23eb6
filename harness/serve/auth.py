"""Who is calling: bearer tokens from the JSON file named by HARNESS_API_TOKENS
(`{"<token>": "alice", ...}`), and the rule that a server without tokens only
listens on loopback."""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import threading
from pathlib import Path
from typing import Optional

TOKENS_ENV = "HARNESS_API_TOKENS"
#: the user every request is attributed to when no tokens are configured (loopback only)
LOCAL_USER = "local"


class ServiceConfigError(ValueError):
    """The server cannot start as configured; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, tokens_path: Optional[str]) -> None:
    """Refuse to listen beyond this machine when nobody has to authenticate."""
    if not tokens_path and not is_loopback(host):
        raise ServiceConfigError(
            f"refusing to listen on {host}: without access tokens anyone who can reach it could start runs. "
            f"Set {TOKENS_ENV} to a JSON file mapping token -> user name (e.g. {{\"<token>\": \"alice\"}}), "
            f"or listen on loopback only (--host 127.0.0.1)"
        )


def load_tokens(path: str) -> dict[str, str]:
    """token -> user from a JSON file; raises ServiceConfigError naming the file and the fault."""
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as e:
        raise ServiceConfigError(f"{TOKENS_ENV}={path}: cannot read the tokens file ({e.strerror})") from None
    except ValueError as e:
        raise ServiceConfigError(f"{TOKENS_ENV}={path}: not valid JSON ({e})") from None
    if not isinstance(raw, dict) or not raw:
        raise ServiceConfigError(f"{TOKENS_ENV}={path}: expected a non-empty JSON object {{\"<token>\": \"<user>\"}}")
    for token, user in raw.items():
        if not isinstance(user, str) or not user.strip() or not token.strip():
            raise ServiceConfigError(f"{TOKENS_ENV}={path}: every entry must map a non-empty token to a user name")
        if len(token) < 8:
            raise ServiceConfigError(f"{TOKENS_ENV}={path}: the token of user {user!r} is shorter than 8 characters")
    return dict(raw)


class TokenTable:
    """The tokens file, re-read when it changes (so users can be added without a restart)."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: Optional[float] = None
        self._tokens: dict[str, str] = {}
        if path:
            self._reload()

    @property
    def enabled(self) -> bool:
        return bool(self.path)

    def _reload(self) -> None:
        assert self.path
        mtime = os.stat(self.path).st_mtime
        if mtime != self._mtime:
            self._tokens = load_tokens(self.path)
            self._mtime = mtime

    def user_for(self, authorization: Optional[str]) -> Optional[str]:
        """The user a `Bearer <token>` header belongs to, or None."""
        if not self.enabled:
            return LOCAL_USER
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        with self._lock:
            try:
                self._reload()
            except (OSError, ServiceConfigError):
                pass  # keep serving the last good table
            tokens = self._tokens
        token = token.strip()
        for known, user in tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
        return None
