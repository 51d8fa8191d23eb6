"""The pydantic models of LLM access: what an agent asks for, what limits it has, which
provider the gateway talks to, and what an attempt used."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

LimitName = Literal["tokens", "cost_usd", "calls"]


class LLMAccess(BaseModel):
    """`llm: {models: [...], model: ...}` in an agent's config.yaml (`llm: true` is all defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: Optional[list[str]] = Field(default=None, description="models the agent may call; None: any")
    model: Optional[str] = Field(default=None, description="the model the agent uses unless told otherwise (`--model`)")


class LLMLimits(BaseModel):
    """Per-attempt ceilings; past one the gateway answers 429 naming it. None: no limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: Optional[int] = Field(default=None, ge=0, description="input + output tokens")
    cost_usd: Optional[float] = Field(default=None, ge=0)
    calls: Optional[int] = Field(default=None, ge=0)


class ProviderConfig(BaseModel):
    """The upstream OpenAI-compatible API. `api_key` never leaves the gateway's process."""

    model_config = ConfigDict(frozen=True)

    base_url: str = "https://api.openai.com/v1"
    api_key: str = Field(default="", repr=False)
    retries: int = Field(default=4, ge=0, description="extra tries after a 429, 5xx, timeout or refused connection")
    backoff_s: float = Field(default=1.0, ge=0, description="first wait between tries, doubled each time")
    timeout_s: float = Field(default=600.0, gt=0, description="one upstream call, seconds")
    prices_file: Optional[str] = Field(default=None, description="a YAML price table added to the built-in one")

    @classmethod
    def from_env(cls, env_file: Optional[Path] = None) -> Optional["ProviderConfig"]:
        """From the environment, else a `.env` file ($HARNESS_ENV_FILE, else ./.env); None when
        neither OPENAI_API_KEY nor OPENAI_BASE_URL is set anywhere."""
        env = dict(read_env_file(env_file or Path(os.environ.get("HARNESS_ENV_FILE", ".env"))))
        env.update({k: v for k, v in os.environ.items() if k.startswith(("OPENAI_", "HARNESS_LLM_"))})
        if not env.get("OPENAI_API_KEY") and not env.get("OPENAI_BASE_URL"):
            return None
        kw: dict[str, object] = {"api_key": env.get("OPENAI_API_KEY", "")}
        if env.get("OPENAI_BASE_URL"):
            kw["base_url"] = env["OPENAI_BASE_URL"].rstrip("/")
        for key, field in (("HARNESS_LLM_RETRIES", "retries"), ("HARNESS_LLM_BACKOFF_S", "backoff_s"),
                           ("HARNESS_LLM_TIMEOUT_S", "timeout_s"), ("HARNESS_LLM_PRICES", "prices_file")):
            if env.get(key):
                kw[field] = env[key]
        return cls.model_validate(kw)


def read_env_file(path: Path) -> list[tuple[str, str]]:
    """KEY=VALUE lines of a dotenv file (quotes stripped, `export ` and comments ignored); [] if absent."""
    try:
        text = path.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out.append((key.strip(), value))
    return out


class SessionSpec(BaseModel):
    """What the gateway needs to serve one attempt."""

    model_config = ConfigDict(frozen=True)

    attempt_id: str
    provider: ProviderConfig
    limits: LLMLimits = LLMLimits()
    models: Optional[list[str]] = None
    logs_dir: str = Field(description="host path of the attempt's logs/; llm_calls.jsonl lands there when the session closes")
    expires_s: Optional[float] = Field(default=None, gt=0, description="seconds after which the gateway closes the session "
                                       "itself (an attempt whose worker died never closes it)")


class SessionInfo(BaseModel):
    """An open session: where its socket is (host side) and the token that opens it."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    socket_dir: str
    socket_name: str
    token: str = Field(repr=False)


class LLMUsage(BaseModel):
    """What one attempt used, as the gateway counted it (never as the agent reported it)."""

    calls: int = 0
    failed_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Optional[float] = 0.0
    limit_reached: Optional[LimitName] = None
    provider_down: Optional[str] = Field(default=None, description="why the provider failed for good, when its last call did")
    unpriced_models: list[str] = Field(default_factory=list)

    def row_fields(self) -> dict[str, object]:
        """The attempt-row columns."""
        return {"llm_calls": self.calls, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cost_usd": self.cost_usd, "llm_limit_reached": self.limit_reached}
