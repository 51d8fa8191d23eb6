"""harness's stand-in for mlebench (see ../README.md). Not the real package."""

__harness_shim__ = True
