"""Hunt for the provider's real key (environment, /proc of every visible process, every readable
file outside the system trees) and for a way out (the provider directly, the internet, the
socket directory); then use the gateway as told. Findings go to $SUBMISSION_DIR/hunt.json."""

import json
import os
import socket
import urllib.request
from pathlib import Path

# the needle arrives reversed so this process's own environment does not hold it verbatim
key = os.environ.pop("HUNT_KEY")[::-1].encode()
target = os.environ.pop("HUNT_TARGET")
found = []
if any(key in v.encode() for v in os.environ.values()):
    found.append("own environment")
pids = [p for p in os.listdir("/proc") if p.isdigit()]
for pid in pids:
    for name in ("environ", "cmdline"):
        try:
            if key in Path(f"/proc/{pid}/{name}").read_bytes():
                found.append(f"/proc/{pid}/{name}")
        except OSError:
            pass
files = 0
skip = ("/proc", "/sys", "/dev", "/usr")
for root, dirs, names in os.walk("/", followlinks=False):
    if root.startswith(skip) or "site-packages" in root or "/lib/python3" in root:
        dirs[:] = []
        continue
    for n in names:
        p = os.path.join(root, n)
        try:
            if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) < 4 * 1024**2:
                files += 1
                if key in Path(p).read_bytes():
                    found.append(p)
        except OSError:
            pass
reached = []
host, port = target.rsplit(":", 1)
for addr in [(host, int(port)), ("1.1.1.1", 80), ("8.8.8.8", 53)]:
    try:
        socket.create_connection(addr, timeout=2).close()
        reached.append(f"{addr[0]}:{addr[1]}")
    except OSError:
        pass
try:
    Path("/run/harness-llm/planted").write_text("x")
    reached.append("wrote into the socket directory")
except OSError:
    pass
req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", method="POST",
                             data=json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode(),
                             headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}", "Content-Type": "application/json"})
answer = json.loads(urllib.request.urlopen(req, timeout=30).read())
report = {"found": found, "reached": reached, "pids": pids, "files_searched": files, "token": os.environ["OPENAI_API_KEY"],
          "base_url": os.environ["OPENAI_BASE_URL"], "answer": answer["choices"][0]["message"]["content"]}
Path(os.environ["SUBMISSION_DIR"], "hunt.json").write_text(json.dumps(report))
print(json.dumps({k: v for k, v in report.items() if k != "token"}))
