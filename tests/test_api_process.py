"""The API as a real server process: uvicorn on 127.0.0.1 with a free port, called over HTTP with httpx."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import polars as pl
import pytest

from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from dibao.serve.audit import query_audit, verify_chain
from dibao.serve.tokens import add_token
from tests.real_server import free_port, serving

ROOT = Path(__file__).resolve().parent.parent
DATE = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("api-process")
    store = root / "store"
    run_daily(ROOT / "data" / "samples" / "drop", DATE, RunStore(store))
    tokens = {"admin": add_token(store / "tokens.yaml", "admin", "admin", []),
              "cw": add_token(store / "tokens.yaml", "cw", "caseworker", ["340402"])}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "dibao.serve", "--store", str(store), "--host", "127.0.0.1", "--port", str(port)]
    with serving(command, root / "server.log", base, start_seconds=60):
        yield base, store, tokens


def test_real_server_answers_over_http(server: tuple[str, Path, dict[str, str]]) -> None:
    base, store, tokens = server
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/health").json() == {"status": "ok", "run": DATE.isoformat()}
        assert client.get("/openapi.json").json()["info"]["title"].startswith("dibao API")
        exits = pl.read_parquet(store / "runs" / DATE.isoformat() / "exit_candidates.parquet")
        household = exits.filter(pl.col("county_code") == "340402")["dibao_household_id"][0]
        response = client.get(f"/households/{household}", headers={"Authorization": f"Bearer {tokens['cw']}"})
        assert response.status_code == 200, response.text
        assert household in {h["household_id"] for h in response.json()["households"]}
        denied = client.get("/candidates")
        assert denied.status_code == 401 and denied.headers["content-type"] == "application/problem+json"
        assert "server" not in denied.headers  # no server banner
        page = client.get("/candidates?type=flag&size=3", headers={"Authorization": f"Bearer {tokens['admin']}"})
        assert page.status_code == 200 and len(page.json()["items"]) == 3
    entries = query_audit(store / "audit")
    assert [(e["user"], e["action"], e["status"]) for e in entries] == [
        ("cw", "household", 200), (None, "candidates", 401), ("admin", "candidates", 200)]
    assert verify_chain(store / "audit")[0]
