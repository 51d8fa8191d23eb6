"""Who is calling: bearer tokens from the JSON file named by HARNESS_API_TOKENS,
and the rule that a server without tokens only listens on loopback.

    {"<token>": "alice",
     "<token>": {"user": "ops", "admin": true},
     "<token>": {"user": "bob", "max_concurrent_attempts": 2, "cpu_seconds_per_day": 3600}}

A plain string is a user with the server's default quotas; an object may make the
user an admin (sees every run and agent) or give them their own quotas."""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import threading
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

TOKENS_ENV = "HARNESS_API_TOKENS"
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class UserPolicy(BaseModel):
    """What the tokens file says about one user beyond their name; None means the server's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    admin: bool = False
    max_concurrent_attempts: Optional[int] = Field(None, ge=0)
    cpu_seconds_per_day: Optional[float] = Field(None, ge=0)
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
    tokens: dict[str, str] = {}
    for token, entry in raw.items():
        user = entry.get("user") if isinstance(entry, dict) else entry
        if not isinstance(user, str) or not user.strip() or not token.strip():
            raise ServiceConfigError(f"{TOKENS_ENV}={path}: every entry must map a non-empty token to a user name "
                                     'or to {"user": "<name>", "admin": true, ...}')
        if not USER_NAME.match(user):
            raise ServiceConfigError(f"{TOKENS_ENV}={path}: user name {user!r} may only hold letters, digits, . _ - "
                                     "(it names the user's agents, `<user>/<agent>`)")
        if len(token) < 8:
            raise ServiceConfigError(f"{TOKENS_ENV}={path}: the token of user {user!r} is shorter than 8 characters")
        if isinstance(entry, dict):
            _user_policy(path, user, entry)
        tokens[token] = user
    return tokens


def load_policies(path: str) -> dict[str, UserPolicy]:
    """user -> UserPolicy (admin flag, own quotas) from the tokens file's object entries."""
    raw = json.loads(Path(path).read_text())
    load_tokens(path)
    return {e["user"]: _user_policy(path, e["user"], e) for e in raw.values() if isinstance(e, dict)}


def _user_policy(path: str, user: str, entry: dict[str, Any]) -> UserPolicy:
    from pydantic import ValidationError

    try:
        return UserPolicy(**{k: v for k, v in entry.items() if k != "user"})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ServiceConfigError(f"{TOKENS_ENV}={path}: user {user!r}: field {where!r}: {first['msg']} "
                                 f"(known fields: user, {', '.join(UserPolicy.model_fields)})") from None


class TokenTable:
    """The tokens file, re-read when it changes (so users can be added without a restart)."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: Optional[float] = None
        self._tokens: dict[str, str] = {}
        self._policies: dict[str, UserPolicy] = {}
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
            self._policies = load_policies(self.path)
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

    def policy(self, user: str) -> UserPolicy:
        """The user's admin flag and own quotas (defaults when the file gives none, or without tokens)."""
        with self._lock:
            return self._policies.get(user) or UserPolicy(admin=False, max_concurrent_attempts=None, cpu_seconds_per_day=None)

    def is_admin(self, user: str) -> bool:
        return self.policy(user).admin
