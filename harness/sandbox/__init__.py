"""Sandboxes: local (bubblewrap) and docker."""
