"""The seed's SDK import paths in a checkout: `from sdk import Client` and
`from sdk.client import Client` are `harness.Client`. Not part of the wheel (the
installed name is `harness`); it works from the repository root, where the seed runs."""

from sdk.client import Client, HarnessAPIError

__all__ = ["Client", "HarnessAPIError"]
