"""Server time of the web pages (issue 14) on a large run: each page requested N times in-process (the ASGI app
through Starlette's TestClient: routing, session, throttle bookkeeping, the query, masking, audit entry, template —
no network), median and 95th percentile per page.

    .venv/bin/python benchmarks/pages.py --store /tmp/s200k [--repeat 30]

The store is any published run (the 200,000-household one: ``dibao synth --households 200000 --seed 1 --out D``
then ``dibao run --inputs D/drop --date 2026-12-01 --store S``). The caseworker is given the county with the most
应退尽退 rows; the limits are set high so the throttle never refuses (its bookkeeping still runs). The first request
of each page is not counted (templates compiled, the run's coverage suppressed once per audience and cached).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
from fastapi.testclient import TestClient

from dibao.serve.app import create_app
from dibao.serve.limits import limits_from
from dibao.serve.tokens import ROLES, add_token

_PLENTY = {"rate": "100000/s", "burst": 100000}
LIMITS = limits_from({"per_address": _PLENTY, "failed_auth": {**_PLENTY, "lockout_seconds": 1},
                      "per_token": dict.fromkeys(ROLES, _PLENTY), "lookups": dict.fromkeys(ROLES, _PLENTY),
                      "lookup_misses": dict.fromkeys(ROLES, _PLENTY),
                      "enumeration": {"window_seconds": 60, "not_found": 10**9, "distinct_ids": 10**9}})
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def log_in(app: Any, token: str) -> TestClient:
    client = TestClient(app)
    form = client.get("/ui/login")
    answer = client.post("/ui/login", data={"csrf": CSRF.search(form.text).group(1), "token": token},  # type: ignore[union-attr]
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def timed(client: TestClient, method: str, path: str, repeat: int, **kwargs: Any) -> dict[str, Any]:
    answer = client.request(method, path, **kwargs)  # warm-up, not counted
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.request(method, path, **kwargs)
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 200
    ms = sorted(s * 1000 for s in seconds)
    return {"median_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "bytes": len(answer.content)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    run = sorted((args.store / "runs").iterdir())[-1]
    exits = pl.read_parquet(run / "exit_candidates.parquet")
    county = str(exits["county_code"].mode().sort()[0])
    mine = exits.filter(pl.col("county_code") == county).sort("subject_id")
    household = str(mine["subject_id"][0])
    households = pl.read_parquet(run / "household_facts.parquet").height
    with tempfile.TemporaryDirectory(prefix="dibao-bench-pages-") as folder:
        tokens_file = Path(folder) / "tokens.yaml"
        tokens = {"caseworker": add_token(tokens_file, "bench-caseworker", "caseworker", [county]),
                  "analyst": add_token(tokens_file, "bench-analyst", "analyst", [])}
        app = create_app(args.store, tokens_file, Path(folder) / "audit", limits=LIMITS,
                         throttle_state=Path(folder) / "throttle.sqlite3")
        with TestClient(app):
            cw, analyst = log_in(app, tokens["caseworker"]), log_in(app, tokens["analyst"])
            csrf = CSRF.search(cw.get("/ui/").text).group(1)  # type: ignore[union-attr]
            results = {
                "/ui/ (caseworker)": timed(cw, "GET", "/ui/", args.repeat),
                "/ui/households POST (a flagged household)": timed(
                    cw, "POST", "/ui/households", args.repeat, data={"csrf": csrf, "q": household}),
                "/ui/households?q= (not found)": timed_404(cw, "DB999999999999", args.repeat),
                f"/ui/lists?type=exit ({mine.height:,} rows of the county)": timed(
                    cw, "GET", "/ui/lists?type=exit", args.repeat),
                "/ui/lists?type=flag&sort=-first_seen&page=3": timed(
                    cw, "GET", "/ui/lists?type=flag&sort=-first_seen&page=3", args.repeat),
                "/ui/lists.xlsx?type=exit (download)": timed(cw, "GET", "/ui/lists.xlsx?type=exit", args.repeat),
                "/ui/coverage (analyst)": timed(analyst, "GET", "/ui/coverage", args.repeat),
                "/ui/coverage.png": timed(analyst, "GET", "/ui/coverage.png", args.repeat),
                "/ui/runs (caseworker)": timed(cw, "GET", "/ui/runs", args.repeat),
            }
    print(json.dumps({"store": str(args.store), "run": run.name, "households": households, "county": county,
                      "repeat": args.repeat, "pages": results}, ensure_ascii=False, indent=2))


def timed_404(client: TestClient, query: str, repeat: int) -> dict[str, Any]:
    seconds = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        answer = client.get("/ui/households", params={"q": query})
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 404
    ms = sorted(s * 1000 for s in seconds[1:])
    return {"median_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "bytes": len(answer.content)}


if __name__ == "__main__":
    main()
