"""Technique tasks (one diagnostic question with a known answer) and engineering
tasks (write a spec, a notebook, a script; graded by running it), one folder each.

Every folder holds `task.py` (the preparer, the grader, and the reference and
plausible-but-wrong solutions the tests use) and `instructions.md` (what the
agent is told). `harness.technique` finds them and runs them; `_common.py` holds
what they share. Nothing here is visible inside an agent's sandbox.
"""
