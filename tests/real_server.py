"""A real server process for the tests that call the API over HTTP (``python -m dibao.serve``, ``dibao serve``).

One copy of the start/stop code, so that every such test stops the server the same way. With ``--workers 2``
uvicorn's worker processes are children of the server: killing only the server (``process.kill()``, what the
copies this replaces did when it did not stop in time) left the workers running long after the tests. The server
starts in a session of its own and its whole process group is killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
STOP_SECONDS = 15  # SIGTERM, then this long for the server (and its workers) to stop before the group is killed


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process left in the server's process group (its id is the server's pid: a session leader)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def serving(command: list[str], log_file: Path, base_url: str, *, env: dict[str, str] | None = None,
            umask: int | None = None, verify: ssl.SSLContext | bool = False, start_seconds: float = 90,
            ) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (a server on ``base_url``) from the repository root until GET /health answers 200, yield it,
    then stop it and every process it started (no worker outlives the test).

    ``env`` is added to this process's environment (with PYTHONUNBUFFERED=1); ``umask`` is the server's umask
    (default: this process's); ``verify`` checks an HTTPS server's certificate; stdout and stderr go to ``log_file``.
    """
    environment = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=environment,
                                   umask=-1 if umask is None else umask, start_new_session=True)
        try:
            deadline = time.monotonic() + start_seconds
            while True:
                assert process.poll() is None, log_file.read_text(errors="replace")
                try:
                    if httpx.get(f"{base_url}/health", timeout=1, verify=verify).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, (f"the server did not start within {start_seconds:g} s\n"
                                                     + log_file.read_text(errors="replace"))
                time.sleep(0.2)
            yield process
        finally:
            try:
                process.terminate()  # a no-op if it has exited already
                try:
                    process.wait(timeout=STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    _kill_group(process)
                    process.wait(timeout=10)
            finally:
                _kill_group(process)  # workers left behind by a server that exited (or was killed) without them
