"""`from sdk.client import Client`: the seed's name for harness.Client (harness/client.py)."""

from harness.client import Client, HarnessAPIError

__all__ = ["Client", "HarnessAPIError"]
