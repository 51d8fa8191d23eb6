"""An attempt's side of LLM access: open a session on the node's gateway, tell the sandbox
what to mount and how to start the forwarder in front of the agent, close the session after."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict

from harness.llm.models import LLMAccess, LLMLimits, LLMUsage, ProviderConfig, SessionInfo, SessionSpec

#: where the attempt's socket directory appears inside the sandbox
SANDBOX_SOCKET_DIR = "/run/harness-llm"


class LLMRunConfig(BaseModel):
    """What every attempt of a run gets: the provider (with its key: it stays on the host side),
    the limits, the models allowed and the model to use."""

    model_config = ConfigDict(frozen=True)

    provider: ProviderConfig
    limits: LLMLimits = LLMLimits()
    models: Optional[list[str]] = None
    model: Optional[str] = None


class LLMSetupError(ValueError):
    """The run asks for LLM access this machine cannot give; the message says what to set."""


def run_config(agent_id: str, llm: bool | LLMAccess, limits: LLMLimits, *, model: Optional[str] = None,
               token_limit: Optional[int] = None, cost_limit: Optional[float] = None,
               provider: Optional[ProviderConfig] = None) -> Optional[LLMRunConfig]:
    """The run's LLM settings from the agent's `llm`/`llm_limits` and the run's overrides; None
    when the agent does not ask for an LLM. Raises LLMSetupError when no provider is configured."""
    if not llm:
        return None
    access = llm if isinstance(llm, LLMAccess) else LLMAccess()
    provider = provider or ProviderConfig.from_env()
    if provider is None:
        raise LLMSetupError(f"agent {agent_id!r} calls an LLM (`llm:` in its config.yaml): set OPENAI_API_KEY (and "
                            "OPENAI_BASE_URL for a server other than OpenAI's) in the environment or in ./.env")
    chosen = model or access.model
    if chosen and access.models is not None and chosen not in access.models:
        raise LLMSetupError(f"--model {chosen!r} is not among agent {agent_id!r}'s `llm.models` ({', '.join(access.models)})")
    overrides = {k: v for k, v in (("tokens", token_limit), ("cost_usd", cost_limit)) if v is not None}
    return LLMRunConfig(provider=provider, limits=limits.model_copy(update=overrides), models=access.models, model=chosen)


class AttemptLLM:
    """One attempt's open session. `binds`, `env` and `wrap` go into its SandboxJob."""

    def __init__(self, gateway: Any, info: SessionInfo, config: LLMRunConfig, attempt_id: str = "") -> None:
        self.attempt_id = attempt_id
        self.gateway = gateway
        self.info = info
        self.config = config
        self._usage: Optional[LLMUsage] = None

    @classmethod
    def open(cls, attempt_id: str, config: LLMRunConfig, logs_dir: Path, time_limit_s: Optional[float] = None) -> "AttemptLLM":
        """A session on this node's gateway for the attempt whose logs are in `logs_dir`; it closes
        itself 10 minutes after `time_limit_s` (seconds) if the attempt never closes it."""
        import ray

        from harness.llm.gateway import node_gateway  # aiohttp loads only where an LLM agent runs

        gateway = node_gateway()
        spec = SessionSpec(attempt_id=attempt_id, provider=config.provider, limits=config.limits, models=config.models,
                           logs_dir=str(logs_dir), expires_s=time_limit_s + 600 if time_limit_s else None)
        return cls(gateway, ray.get(gateway.open.remote(spec)), config, attempt_id)

    @property
    def binds(self) -> list[tuple[str, str]]:
        """(host path, sandbox path) of the socket's directory, mounted read-only."""
        return [(self.info.socket_dir, SANDBOX_SOCKET_DIR)]

    @property
    def env(self) -> dict[str, str]:
        """The agent's OpenAI settings (the forwarder adds OPENAI_BASE_URL once it listens)."""
        env = {"OPENAI_API_KEY": self.info.token, "HARNESS_LLM": "1", "HARNESS_ATTEMPT_ID": self.attempt_id}
        if self.config.model:
            env["HARNESS_LLM_MODEL"] = self.config.model
        return env

    def wrap(self, command: list[str]) -> list[str]:
        """The agent's command behind the forwarder (the host path is for a sandbox without isolation)."""
        host = str(Path(self.info.socket_dir) / self.info.socket_name)
        return ["python3", "-m", "harness.llm.forwarder", "--socket", f"{SANDBOX_SOCKET_DIR}/{self.info.socket_name}",
                "--socket", host, "--", *command]

    def close(self) -> LLMUsage:
        """End the session (the token dies, llm_calls.jsonl lands in the logs); returns what was used."""
        import ray

        if self._usage is None:
            try:
                self._usage = ray.get(self.gateway.close.remote(self.info.session_id))
            except KeyError:  # already expired: the attempt outlived its time limit by far
                self._usage = LLMUsage(provider_down="the LLM session expired before the attempt ended")
        return self._usage
