"""Inside the sandbox: listen on 127.0.0.1:<port>, pass every connection through to the
attempt's gateway socket, and run the agent's command with OPENAI_BASE_URL pointing here.

    python3 -m harness.llm.forwarder --socket /run/harness-llm/openai.sock [--socket ...] [--port 4000] -- CMD...

Standard library only (it runs with whatever Python the sandbox has). Bytes are relayed as
they are (keep-alive, streaming, anything HTTP), so it adds a copy, not a parse. It exits with
the command's exit code; SIGTERM and SIGINT are passed on to the command.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from typing import Optional, Sequence

DEFAULT_PORT = 4000


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Relay both directions until either side closes."""
    socks = [a, b]
    try:
        while True:
            ready, _, _ = select.select(socks, [], [])
            for r in ready:
                data = r.recv(65536)
                if not data:
                    return
                (b if r is a else a).sendall(data)
    except OSError:
        pass
    finally:
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


def serve(listener: socket.socket, socket_path: str) -> None:
    """Accept forever; each client gets its own connection to the gateway."""
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(socket_path)
        except OSError:
            client.close()
            upstream.close()
            continue
        threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()


def listen(port: int) -> socket.socket:
    """127.0.0.1:`port`, or any free port when it is taken."""
    for p in (port, 0):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            s.close()
            continue
        s.listen(128)
        return s
    raise OSError("no free port on 127.0.0.1")


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", action="append", required=True, help="gateway socket; the first that exists is used")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    path = next((p for p in args.socket if os.path.exists(p)), None)
    if path is None:
        print(f"harness forwarder: no gateway socket at {' or '.join(args.socket)}", file=sys.stderr)
        return 70
    listener = listen(args.port)
    port = listener.getsockname()[1]
    threading.Thread(target=serve, args=(listener, path), daemon=True).start()
    url = f"http://127.0.0.1:{port}/v1"
    env = {**os.environ, "OPENAI_BASE_URL": url, "OPENAI_API_BASE": url, "HARNESS_LLM_URL": url}
    if not command:
        print(url, flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        return 0
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as e:
        print(f"harness forwarder: cannot start {command[0]!r}: {e}", file=sys.stderr)
        return 127
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    while True:
        try:
            rc = child.wait()
        except InterruptedError:
            continue
        return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main())
