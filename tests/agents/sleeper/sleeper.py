import os
import subprocess
import time

marker = os.environ.get("PROBE_MARKER", "harness-sleeper-marker")
# a grandchild in its own session, the kind that escapes a plain process-group kill
subprocess.Popen(["sleep", "600", marker], start_new_session=True)
print("sleeping", flush=True)
time.sleep(600)
