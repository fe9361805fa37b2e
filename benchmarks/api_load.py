"""Benchmark: the API under load — household lookups and coverage queries beside a trivial endpoint.

    .venv/bin/python benchmarks/api_load.py --store benchmarks/work/store-200000 --concurrency 50 --seconds 15

Starts `dibao.serve` on 127.0.0.1 (a free port) over a published store, then runs the load generator in a separate
process (wrk when installed — Debian package wrk, ``make system-packages`` — else an httpx asyncio client;
``--concurrency`` connections, each phase bounded to ``--seconds``), reports the memory of each server worker
after the load, and stops the server. Loopback only. Target (issue 6): household lookup
p99 ≤ 20 ms and within 3× of the trivial endpoint's p99. Build the store first with benchmarks/rules.py
(a 200,000-household run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
# The service's throttle (dibao/serve/limits.py) refuses a lookup flood from one token by design; the benchmark
# measures how fast the service answers, so its server runs with limits it never reaches (the throttle's own
# bookkeeping still runs on every request).
_PLENTY = '{rate: 100000/s, burst: 100000}'
UNTHROTTLED = (f"per_address: {_PLENTY}\nfailed_auth: {{rate: 100000/s, burst: 100000, lockout_seconds: 1}}\n"
               + "".join(f"{group}: {{caseworker: {_PLENTY}, analyst: {_PLENTY}, admin: {_PLENTY}}}\n"
                         for group in ("per_token", "lookups", "lookup_misses"))
               + "enumeration: {window_seconds: 60, not_found: 1000000000, distinct_ids: 1000000000}\n")


def member_ids(run: Path, count: int) -> list[str]:
    """``count`` ID numbers of household members of the published run folder ``run``, the same for every call
    (bank-only persons are left out: their lookup answers 404)."""
    links = pl.read_parquet(run / "person_links.parquet", columns=["person_key", "household"])
    return links.filter((pl.col("person_key").str.len_chars() == 18) & pl.col("household").is_not_null())[
        "person_key"].unique().sort().sample(count, seed=1).to_list()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _phase(url: str, token: str, paths: list[str], concurrency: int, seconds: float) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=30) as client:
        async def worker(seed: int) -> None:
            nonlocal errors
            rng = random.Random(seed)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.get(rng.choice(paths))
                latencies.append(time.perf_counter() - started)
                errors += response.status_code >= 500 or response.status_code == 401

        begun = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - begun
    latencies.sort()
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def _wrk(url: str, token: str, paths: list[str], concurrency: int, seconds: float, work: Path) -> dict[str, float]:
    """One phase with wrk (C, one thread, so the server keeps the other core): random paths from ``paths``."""
    script = work / "load.lua"
    quoted = ",".join(json.dumps(p) for p in paths)
    script.write_text(
        f"local paths = {{{quoted}}}\n"
        "math.randomseed(1)\n"
        "request = function()\n"
        "  return wrk.format('GET', paths[math.random(#paths)], "
        f"{{['Authorization'] = 'Bearer {token}'}})\n"
        "end\n", encoding="utf-8")
    subprocess.run(["wrk", "-t1", f"-c{concurrency}", "-d2s", "-s", str(script), url], check=True,
                   capture_output=True)  # warm-up
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "--latency", "-s", str(script),
                          url], check=True, capture_output=True, text=True).stdout

    def ms(text: str) -> float:
        value = float(re.sub(r"[a-z]+$", "", text))
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[re.search(r"[a-z]+$", text).group()]  # type: ignore[union-attr]

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": requests, "errors": int(errors.group(1)) if errors else 0,
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            # the Latency Distribution lines ("     50%   15.20ms"), not a Stdev column that happens to end in 50%
            "p50_ms": ms(re.search(r"^\s+50%\s+(\S+)$", out, re.MULTILINE).group(1)),  # type: ignore[union-attr]
            "p99_ms": ms(re.search(r"^\s+99%\s+(\S+)$", out, re.MULTILINE).group(1))}  # type: ignore[union-attr]


def _worker_memory(server_pid: int) -> list[dict[str, int]]:
    """MiB held by each worker process of the server (its children): private (RssAnon), file pages (RssFile: the
    mapped household index, page cache shared by all workers), PSS (shared pages divided among their users)."""
    children: list[int] = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        children += [int(pid) for pid in (task / "children").read_text().split()
                     if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]  # not the resource tracker
    figures = []
    for pid in children or [server_pid]:
        row: dict[str, int] = {}
        for name in ("status", "smaps_rollup"):
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile", "Pss", "VmHWM"):
                    row[key] = int(value.split()[0]) // 1024
        figures.append(row)
    return figures


def client_main(args: argparse.Namespace) -> None:
    """The load generator (runs in its own process)."""
    plan = json.loads(Path(args.plan).read_text())
    results = {}
    for name, paths in plan["phases"].items():
        asyncio.run(_phase(plan["url"], plan["token"], paths[:50], args.concurrency, 2.0))  # warm-up
        results[name] = asyncio.run(_phase(plan["url"], plan["token"], paths, args.concurrency, args.seconds))
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, default=ROOT / "benchmarks" / "work" / "store-200000")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--python-client", action="store_true", help="use the httpx client even if wrk exists")
    parser.add_argument("--no-limits-file", action="store_true",
                        help="start the server without --limits (a service older than its throttle)")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return

    sys.path.insert(0, str(ROOT))
    from dibao.publish.store import RunStore
    from dibao.serve.tokens import add_token, revoke_token

    store = args.store.resolve()
    run = RunStore(store).run_dir(RunStore(store).published_dates()[-1])
    tokens_file = store / "tokens.yaml"
    revoke_token(tokens_file, "load-benchmark")
    token = add_token(tokens_file, "load-benchmark", "admin", [])
    ids = member_ids(run, 2000)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    phases: dict[str, list[str]] = {
        "GET /health (trivial)": ["/health"],
        "GET /households/{id}": [f"/households/{i}" for i in ids],
        "GET /coverage": ["/coverage?level=county", "/coverage?level=province", "/coverage?level=city"],
    }
    plan = {"url": url, "token": token, "phases": phases}
    plan_file = store / "load-plan.json"
    plan_file.write_text(json.dumps(plan))
    limits_file = store / "load-limits.yaml"
    limits_file.write_text(UNTHROTTLED, encoding="utf-8")
    env = dict(os.environ, POLARS_MAX_THREADS="1")
    server = subprocess.Popen([sys.executable, "-m", "dibao.serve", "--store", str(store), "--port", str(port),
                               "--workers", str(args.workers),
                               *([] if args.no_limits_file else ["--limits", str(limits_file)])], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import httpx

        started = time.monotonic()
        deadline = started + 300
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"the server exited ({server.returncode}) before it answered /health")
            try:
                if httpx.get(f"{url}/health", timeout=1).json().get("run"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        ready_seconds = time.monotonic() - started
        if shutil.which("wrk") and not args.python_client:
            generator = "wrk (1 thread)"
            results = {name: _wrk(url, token, paths, args.concurrency, args.seconds, store)
                       for name, paths in phases.items()}
        else:
            generator = "httpx asyncio client"
            out = subprocess.run([sys.executable, __file__, "--client", "--plan", str(plan_file),
                                  "--concurrency", str(args.concurrency), "--seconds", str(args.seconds)],
                                 check=True, capture_output=True, text=True, timeout=600)
            results = json.loads(out.stdout)
        memory = _worker_memory(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        revoke_token(tokens_file, "load-benchmark")
        plan_file.unlink(missing_ok=True)
        limits_file.unlink(missing_ok=True)
    print(f"store {store} (run {run.name}), concurrency {args.concurrency}, {args.workers} server worker(s), "
          f"{args.seconds:.0f} s per phase, load by {generator}, {os.cpu_count()} cores shared by server and load")
    print(f"server answering /health with the run {ready_seconds:.1f} s after start; after the load, per worker "
          "(MiB): " + "; ".join(f"private {m['RssAnon']:,}, file {m['RssFile']:,}, PSS {m['Pss']:,}, "
                               f"peak RSS {m['VmHWM']:,}" for m in memory))
    print("| endpoint | requests | errors | req/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['requests']:,} | {r['errors']} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} |")


if __name__ == "__main__":
    main()
