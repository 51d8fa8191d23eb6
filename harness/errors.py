"""Errors a user can cause by naming something that does not resolve. A leaf module, so
that every module that finds things (registry, mlebench adapter, technique tasks) can
raise them without importing each other."""

from __future__ import annotations


class RegistryError(ValueError):
    """A name the user gave does not resolve, or a folder is malformed."""


class RunError(ValueError):
    """The run cannot start as asked; the message says what to change."""


class DrivenElsewhere(RunError):
    """The run already has a live driver (another process holds its driver lock)."""
