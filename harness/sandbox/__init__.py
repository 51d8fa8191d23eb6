"""Sandboxes: local (bubblewrap) and docker. Backends by name and capability are in
`harness.sandbox.backends` (`get_sandbox`, `backends_with`); what an agent sees is in
`harness.sandbox.paths`. This file imports nothing, so importing any one module of the
package never loads the others."""
