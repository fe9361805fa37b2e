"""The service's command line: tokens, demo access, audit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import yaml
from typer.testing import CliRunner

from dibao.cli import app
from dibao.pipeline import run_daily
from dibao.publish.store import RunStore

runner = CliRunner()


def test_tokens_are_printed_once_and_stored_hashed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = runner.invoke(app, ["token", "add", "王经办", "--role", "caseworker", "--county", "340402",
                              "--store", str(store), "--allow-unknown-county"])  # no run yet to check it against
    assert out.exit_code == 0, out.output
    secret = out.output.strip().splitlines()[-1]
    stored = (store / "tokens.yaml").read_text(encoding="utf-8")
    assert secret not in stored and "王经办" in stored
    entry = yaml.safe_load(stored)["tokens"][0]
    assert entry["role"] == "caseworker" and entry["counties"] == ["340402"] and len(entry["sha256"]) == 64
    assert runner.invoke(app, ["token", "add", "x", "--role", "boss", "--store", str(store)]).exit_code != 0
    assert runner.invoke(app, ["token", "revoke", "王经办", "--store", str(store)]).exit_code == 0
    assert runner.invoke(app, ["token", "revoke", "王经办", "--store", str(store)]).exit_code == 1


def test_demo_access_prints_a_curl_per_role_and_audit_starts_intact(drop: Callable[..., Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    run_daily(drop(), dt.date(2026, 11, 20), RunStore(store))
    out = runner.invoke(app, ["demo-access", "--store", str(store)])
    assert out.exit_code == 0, out.output
    assert out.output.count("curl -H 'Authorization: Bearer ") == 3
    assert f"dibao serve --store {store}" in out.output
    roles = {t["role"] for t in yaml.safe_load((store / "tokens.yaml").read_text(encoding="utf-8"))["tokens"]}
    assert roles == {"caseworker", "analyst", "admin"}
    verified = runner.invoke(app, ["audit", "--store", str(store), "--verify"])
    assert verified.exit_code == 0 and "intact" in verified.output
