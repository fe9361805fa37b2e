"""Benchmark: CPU per request through the whole API application, in-process: /health beside /households/{id}.

    POLARS_MAX_THREADS=1 .venv/bin/python benchmarks/api_inprocess.py --store benchmarks/work/store-2000000

Calls the ASGI application directly (no sockets, no HTTP parsing, one request at a time), as a service worker
would run it (the server's throttle and audit log included, limits set so that nothing is refused), and reports per
request: the process's CPU, wall time, and the CPU of each thread that worked (read from ``/proc/self/task``), so
that what the framework costs around a lookup can be told from the lookup itself. Where ``benchmarks/api_load.py``
says how a worker behaves under load, this says where one request's CPU goes. Build the store first
(benchmarks/province.py or benchmarks/rules.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
Message = dict[str, Any]


def _thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) of each thread of this process, by thread id."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for task in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{task}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        found[task] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def _call(app: Any, token: str) -> Callable[[str], Awaitable[int]]:
    async def call(path: str) -> int:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "app": app, "state": {}}
        status = 0

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])

        await app(scope, receive, send)
        return status

    return call


async def _measure(app: Any, call: Callable[[str], Awaitable[int]], phases: dict[str, list[str]],
                   warm_up: str) -> None:
    async with app.router.lifespan_context(app):
        for _ in range(600):  # the snapshot loads in the background
            if await call(warm_up) == 200:
                break
            await asyncio.sleep(0.5)
        print("| endpoint | requests | CPU µs per request | wall µs per request | CPU µs by thread |")
        print("|---|---:|---:|---:|---|")
        for name, paths in phases.items():
            for path in paths[:200]:
                await call(path)
            threads = _thread_cpu_seconds()
            cpu, wall = time.process_time(), time.perf_counter()
            statuses = {await call(path) for path in paths}
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            after = _thread_cpu_seconds()
            by_thread = sorted(((after[t] - threads.get(t, 0.0)) / len(paths) * 1e6 for t in after), reverse=True)
            shown = ", ".join(f"{us:.0f}" for us in by_thread if us >= 1)
            assert statuses == {200}, f"{name}: answers {statuses}"
            print(f"| {name} | {len(paths):,} | {cpu / len(paths) * 1e6:,.0f} | {wall / len(paths) * 1e6:,.0f} "
                  f"| {shown} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, default=ROOT / "benchmarks" / "work" / "store-200000")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from api_load import UNTHROTTLED, member_ids

    from dibao.publish.store import RunStore
    from dibao.serve.app import create_app
    from dibao.serve.limits import limits_from
    from dibao.serve.tokens import add_token, revoke_token

    store = args.store.resolve()
    run = RunStore(store).run_dir(RunStore(store).published_dates()[-1])
    tokens_file = store / "tokens.yaml"
    revoke_token(tokens_file, "inprocess-benchmark")
    token = add_token(tokens_file, "inprocess-benchmark", "admin", [])
    try:
        ids = member_ids(run, args.requests)
        app = create_app(store, tokens_file, limits=limits_from(yaml.safe_load(UNTHROTTLED)))
        phases = {"GET /health": ["/health"] * args.requests,
                  "GET /households/{id}": [f"/households/{person}" for person in ids]}
        print(f"store {store} (run {run.name}), {args.requests:,} requests per endpoint, one at a time, "
              f"audit sync {os.environ.get('DIBAO_AUDIT_FSYNC', 'served')}")
        asyncio.run(_measure(app, _call(app, token), phases, phases["GET /households/{id}"][0]))
    finally:
        revoke_token(tokens_file, "inprocess-benchmark")


if __name__ == "__main__":
    main()
