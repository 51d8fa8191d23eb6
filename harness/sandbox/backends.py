"""Sandbox backends, found here by name and chosen by what they can do (their
`supports_gpus`, `can_disable_internet`), not by callers that know each one. Neither
backend imports the docker SDK until it is used."""

from __future__ import annotations

from harness.sandbox.base import Sandbox
from harness.sandbox.docker import DockerSandbox
from harness.sandbox.local import LocalSandbox

#: every backend, by the name `--sandbox` takes
BACKENDS: dict[str, type[Sandbox]] = {"local": LocalSandbox, "docker": DockerSandbox}


def sandbox_class(kind: str) -> type[Sandbox]:
    """The backend class named `kind` (`local`, `docker`); ValueError naming the choices otherwise."""
    try:
        return BACKENDS[kind]
    except KeyError:
        raise ValueError(f"unknown sandbox {kind!r}; use {', '.join(BACKENDS)} or auto") from None


def get_sandbox(kind: str) -> Sandbox:
    """A fresh backend named `kind` (`auto` is resolved by the orchestrator per agent)."""
    return sandbox_class(kind)()


def backends_with(**capabilities: bool) -> list[str]:
    """Names of the backends whose capabilities match, e.g. `backends_with(supports_gpus=True)`."""
    return [name for name, cls in BACKENDS.items() if all(getattr(cls, k) == v for k, v in capabilities.items())]


__all__ = ["BACKENDS", "Sandbox", "backends_with", "get_sandbox", "sandbox_class"]
