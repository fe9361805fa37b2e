"""Issue 13, findings 1 and 3 against the real app (FastAPI TestClient; tests/test_audit_process.py has the ones
at the HTTP-server level): the audit log cannot be filled by anonymous callers, refused and malformed requests
are logged with numbers hashed, an entry that cannot be written fails the request closed (503), a removed log is
reopened, rotation keeps the chain, and anchors catch a cut, rewritten or deleted log (``dibao audit``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import polars as pl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dibao.cli import app as cli
from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from dibao.serve.app import create_app
from dibao.serve.audit import AuditSettings, query_audit, verify_chain, verify_log
from dibao.serve.audit.anchor import ANCHORS
from dibao.serve.audit.files import ACTIVE, log_files, rotated_files
from dibao.serve.audit.middleware import AUDIT_UNAVAILABLE
from dibao.serve.request_limits import RequestLimits
from dibao.serve.tokens import add_token
from tests.api_limits import UNTHROTTLED
from tests.conftest import make_id

ROOT = Path(__file__).resolve().parent.parent
DATE = dt.date(2026, 11, 20)
runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("audit-api") / "store"
    run_daily(ROOT / "data" / "samples" / "drop", DATE, RunStore(store))
    return store


@pytest.fixture(scope="module")
def tokens(store: Path) -> dict[str, str]:
    return {"cw": add_token(store / "tokens.yaml", "大通区-经办", "caseworker", ["340402"]),
            "admin": add_token(store / "tokens.yaml", "管理员", "admin", [])}


@pytest.fixture(scope="module")
def own_household(store: Path) -> str:
    exits = pl.read_parquet(store / "runs" / DATE.isoformat() / "exit_candidates.parquet")
    return str(exits.filter(pl.col("county_code") == "340402")["dibao_household_id"][0])


def settings_in(store: Path, tmp_path: Path, **overrides: Any) -> AuditSettings:
    return AuditSettings.for_store(store, tmp_path / "audit", environ={}, anchor_dir=tmp_path / "anchors",
                                   anchor_key_file=tmp_path / "anchor.key", **overrides)


def app_for(store: Path, settings: AuditSettings, *, throttled: bool = False) -> FastAPI:
    """The app over ``store`` with its own audit folder and throttle state; throttled as deployed, or not (tests
    about something else than throttling call it faster than the default limits allow)."""
    return create_app(store, store / "tokens.yaml", settings.audit_dir, audit_settings=settings,
                      limits=None if throttled else UNTHROTTLED,
                      throttle_state=settings.audit_dir.parent / "throttle.sqlite3")


@pytest.fixture
def served(store: Path, tmp_path: Path) -> Iterator[tuple[TestClient, AuditSettings]]:
    settings = settings_in(store, tmp_path)
    with TestClient(app_for(store, settings)) as client:
        yield client, settings


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and {"type", "title", "detail"} <= body.keys()
    return body


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


# --- finding 1: no token, 65 KB paths, a full disk -----------------------------------------------------------


def test_a_flood_of_anonymous_long_paths_leaves_the_log_bounded(store: Path, tmp_path: Path) -> None:
    settings = settings_in(store, tmp_path)
    client = TestClient(app_for(store, settings, throttled=True))  # as deployed: the size limits come first
    before = folder_bytes(settings.audit_dir)
    started = time.monotonic()
    for _ in range(751):  # the audit's 751 requests (43 MiB before)
        body = problem(client.get("/households/" + "9" * 60_000), 414)
        assert "请求地址过长" in body["detail"] and "URL is too long" in body["detail"]
    for _ in range(300):  # just under the URL limit: reaches the token check
        assert client.get("/households/" + "9" * 1_900).status_code in (401, 429)
    elapsed = time.monotonic() - started
    cast(FastAPI, client.app).state.audit.close()  # as at shutdown: the count of the last ones not written is written
    grown = folder_bytes(settings.audit_dir) - before
    entries = query_audit(settings.audit_dir)
    suppressed = sum(e["count"] for e in entries if e["action"] == "suppressed")
    written = [e for e in entries if e["action"] != "suppressed"]
    assert len(written) + suppressed == 1051  # every request is accounted for…
    assert len(written) <= settings.anonymous_burst + settings.anonymous_per_second * elapsed + 2  # …few one by one
    assert grown < 150_000, grown  # was 43 MiB
    assert max(len(json.dumps(e, ensure_ascii=False)) for e in entries) < 1000
    assert "9" * 20 not in (settings.audit_dir / ACTIVE).read_text(encoding="utf-8")
    assert verify_chain(settings.audit_dir)[0]


def test_every_request_without_a_valid_token_costs_a_bounded_entry(store: Path, tmp_path: Path) -> None:
    """Even with the anonymous budget off (a huge rate), a 60 KB path costs at most ~1 KB of log."""
    settings = settings_in(store, tmp_path, anonymous_burst=10_000, anonymous_per_second=10_000.0)
    with TestClient(app_for(store, settings)) as c:
        for n in (60_000, 1_900, 64):
            c.get("/households/" + "9" * n)
            c.get("/coverage", params={"area": "9" * n})
    entries = query_audit(settings.audit_dir)
    assert len(entries) == 6 and max(len(json.dumps(e, ensure_ascii=False)) for e in entries) < 1000


# --- finding 3: what is logged, and how ----------------------------------------------------------------------


def test_refused_and_malformed_requests_are_logged_with_numbers_hashed(
        served: tuple[TestClient, AuditSettings], tokens: dict[str, str]) -> None:
    client, settings = served
    person = make_id(birth="19900101", seq="777")  # a valid ID number
    typo = person[:-1] + ("0" if person[-1] != "0" else "1")  # its check digit mistyped
    cw = auth(tokens["cw"])
    problem(client.get(f"/households/{person}"), 401)  # no token
    problem(client.get(f"/households/{typo}", headers=cw), 422)  # malformed ID: the endpoint's own 422
    problem(client.get(f"/households/{person}{'1' * 50}", headers=cw), 422)  # FastAPI's 422: longer than 64
    problem(client.get("/candidates", params={"township": person, "page": 0}, headers=cw), 422)
    problem(client.get("/coverage", params={"area": person}), 401)
    problem(client.get(f"/no/such/{person}"), 404)
    problem(client.get(f"/households/{person}", headers=auth("not-a-token")), 401)
    problem(client.get(f"/households/{person}", headers=cw), 404)

    text = "".join(p.read_text(encoding="utf-8") for p in log_files(settings.audit_dir))
    for clear in (person, typo, person[:10], person[-10:]):
        assert clear not in text  # the ID never stands in the log in clear
    entries = query_audit(settings.audit_dir)
    assert [(e["user"], e["action"], e["status"]) for e in entries] == [
        (None, "household", 401), ("大通区-经办", "household", 422), ("大通区-经办", "household", 422),
        ("大通区-经办", "candidates", 422), (None, "coverage", 401), (None, "request", 404),
        (None, "household", 401), ("大通区-经办", "household", 404)]
    assert "page=0" in entries[3]["query"] and "[id:" in entries[3]["query"]

    found = runner.invoke(cli, ["audit", "--store", "unused", "--audit-dir", str(settings.audit_dir),
                                "--find-id", f"{person[:6]} {person[6:14]} {person[14:].lower()}"],
                          env={"DIBAO_AUDIT_HMAC_KEY": str(settings.hmac_key_file)})
    assert found.exit_code == 0, found.output
    assert "6 entries for" in found.output  # the 401s, the 404s and the /candidates and /coverage queries
    typo_found = runner.invoke(cli, ["audit", "--audit-dir", str(settings.audit_dir), "--find-id", typo],
                               env={"DIBAO_AUDIT_HMAC_KEY": str(settings.hmac_key_file)})
    assert "1 entries for" in typo_found.output


def test_an_entry_that_cannot_be_written_fails_the_lookup_closed(
        served: tuple[TestClient, AuditSettings], tokens: dict[str, str], own_household: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    client, settings = served
    cw = auth(tokens["cw"])
    assert client.get(f"/households/{own_household}", headers=cw).status_code == 200
    real_write = os.write

    def disk_nearly_full(fd: int, data: bytes) -> int:  # the audit file takes only half of each write
        if os.readlink(f"/proc/self/fd/{fd}").endswith(ACTIVE):
            return real_write(fd, data[: len(data) // 2])
        return real_write(fd, data)

    with monkeypatch.context() as patched:
        patched.setattr(os, "write", disk_nearly_full)
        response = client.get(f"/households/{own_household}", headers=cw)
        candidates = client.get("/candidates?size=5", headers=cw)
    body = problem(response, 503)
    assert body["detail"] == AUDIT_UNAVAILABLE and own_household not in response.text
    assert response.headers["retry-after"] == "30"
    problem(candidates, 503)
    ok, message = verify_chain(settings.audit_dir)
    assert ok and message.startswith("1 entries"), message  # nothing half-written, nothing unlogged served
    assert client.get(f"/households/{own_household}", headers=cw).status_code == 200
    assert [e["status"] for e in query_audit(settings.audit_dir)] == [200, 200]


def test_a_lookup_is_not_answered_until_its_entry_is_on_disk(
        served: tuple[TestClient, AuditSettings], tokens: dict[str, str], own_household: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Lookups run on the event loop and share the audit flush; the answer still waits for it: a flush that
    fails refuses the lookup (503, nothing personal), in both forms, and the entry stays in the log."""
    client, settings = served
    cw = auth(tokens["cw"])
    flushes: list[int] = []
    real_fdatasync = os.fdatasync

    def counted(fd: int) -> None:
        flushes.append(fd)
        real_fdatasync(fd)

    def broken_disk(fd: int) -> None:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as patched:
        patched.setattr(os, "fdatasync", counted)
        assert client.get(f"/households/{own_household}", headers=cw).status_code == 200
        assert flushes, "answered without flushing its audit entry"
    with monkeypatch.context() as patched:
        patched.setattr(os, "fdatasync", broken_disk)
        by_path = client.get(f"/households/{own_household}", headers=cw)
        by_body = client.post("/households/lookup", json={"id": own_household}, headers=cw)
    for response in (by_path, by_body):
        assert problem(response, 503)["detail"] == AUDIT_UNAVAILABLE and own_household not in response.text
    assert client.get(f"/households/{own_household}", headers=cw).status_code == 200  # the disk is back
    assert [e["status"] for e in query_audit(settings.audit_dir)] == [200, 200, 200, 200]  # written, not flushed


def test_a_large_family_is_looked_up_in_a_worker_thread_and_answered_the_same(
        served: tuple[TestClient, AuditSettings], tokens: dict[str, str], own_household: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A family past ``LOOP_LOOKUP_MAX_ROWS`` would hold the event loop: it goes to a thread, with the same answer
    and the same audit guarantee (a failed flush still refuses it)."""
    import threading

    from dibao.serve.routers import households

    client, _ = served
    cw = auth(tokens["cw"])
    on_loop = client.get(f"/households/{own_household}", headers=cw)
    threads: list[str] = []
    real_lookup = households.lookup_family

    def noted(*args: Any, **kwargs: Any) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return real_lookup(*args, **kwargs)

    def broken_disk(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(households, "lookup_family", noted)
    with monkeypatch.context() as patched:
        patched.setattr(households, "LOOP_LOOKUP_MAX_ROWS", 0)  # every family counts as large
        in_thread = client.get(f"/households/{own_household}", headers=cw)
        patched.setattr(os, "fdatasync", broken_disk)
        refused = client.get(f"/households/{own_household}", headers=cw)
    client.get(f"/households/{own_household}", headers=cw)  # a usual family: on the event loop's thread
    assert in_thread.status_code == 200 and in_thread.json() == on_loop.json()
    assert problem(refused, 503)["detail"] == AUDIT_UNAVAILABLE and own_household not in refused.text
    loop_thread = threads[2]
    assert len(threads) == 3 and loop_thread not in threads[:2], threads


def test_the_server_reopens_a_removed_log_and_the_loss_shows(
        served: tuple[TestClient, AuditSettings], tokens: dict[str, str], own_household: str) -> None:
    client, settings = served
    cw = auth(tokens["cw"])
    for _ in range(3):
        client.get(f"/households/{own_household}", headers=cw)
    (settings.audit_dir / ACTIVE).unlink()
    assert client.get(f"/households/{own_household}", headers=cw).status_code == 200
    assert [e["seq"] for e in query_audit(settings.audit_dir)] == [4]  # in a new file, not the removed one
    result = verify_log(settings)
    assert not result.ok and "entries 1–3 are missing" in result.message()


def test_rotation_in_service_keeps_the_chain(store: Path, tmp_path: Path, tokens: dict[str, str],
                                             own_household: str) -> None:
    settings = settings_in(store, tmp_path, max_file_bytes=4096)
    with TestClient(app_for(store, settings)) as c:
        for _ in range(40):
            assert c.get(f"/households/{own_household}", headers=auth(tokens["cw"])).status_code == 200
    assert len(rotated_files(settings.audit_dir)) >= 2
    ok, message = verify_chain(settings.audit_dir)
    assert ok and message.startswith("40 entries"), message


def test_oversized_headers_are_problem_json_431(served: tuple[TestClient, AuditSettings]) -> None:
    client, settings = served
    limits = RequestLimits()
    for headers in ({"Authorization": "Bearer " + "a" * 20_000_000}, {"X-Pad": "b" * (limits.max_header_bytes + 1)},
                    {f"X-Pad-{i}": "c" * 400 for i in range(90)}, {f"X-{i}": "d" for i in range(120)}):
        body = problem(client.get("/households/DB1", headers=headers), 431)
        assert "请求头过大" in body["detail"] and "headers too large" in body["detail"]
    assert [(e["action"], e["status"]) for e in query_audit(settings.audit_dir)] == [("refused", 431)] * 4


def test_request_limits_come_from_the_environment() -> None:
    got = RequestLimits.from_env({"DIBAO_API_MAX_URL_BYTES": "4096", "DIBAO_API_MAX_HEADERS_BYTES": "65536"})
    assert (got.max_url_bytes, got.max_header_bytes, got.max_headers_bytes) == (4096, 8192, 65536)
    from dibao.errors import ConfigError

    with pytest.raises(ConfigError):
        RequestLimits.from_env({"DIBAO_API_MAX_URL_BYTES": "two"})


# --- anchors, from the command line and the daily run -------------------------------------------------------


def test_verify_against_the_anchor_catches_cut_rewritten_and_deleted_logs(
        store: Path, tmp_path: Path, tokens: dict[str, str], own_household: str) -> None:
    settings = settings_in(store, tmp_path)
    with TestClient(app_for(store, settings)) as c:
        for _ in range(6):
            c.get(f"/households/{own_household}", headers=auth(tokens["cw"]))
    options = ["--store", str(store), "--audit-dir", str(settings.audit_dir), "--anchor-dir",
               str(settings.anchor_dir), "--anchor-key", str(settings.anchor_key_file)]
    anchored = runner.invoke(cli, ["audit", "anchor", *options])
    assert anchored.exit_code == 0 and "anchored 6 entries" in anchored.output, anchored.output
    verified = runner.invoke(cli, ["audit", "--verify", *options])
    assert verified.exit_code == 0 and "intact" in verified.output and "matches anchor #1" in verified.output

    path = settings.audit_dir / ACTIVE
    original = path.read_bytes()
    path.write_bytes(b"".join(original.splitlines(keepends=True)[:4]))  # the last two entries cut
    cut = runner.invoke(cli, ["audit", "--verify", *options])
    assert cut.exit_code == 1 and "TAMPERED" in cut.output and "entries 5–6 were removed" in cut.output

    path.unlink()
    deleted = runner.invoke(cli, ["audit", "--verify", *options])
    assert deleted.exit_code == 1 and "missing or empty" in deleted.output
    refused = runner.invoke(cli, ["audit", "anchor", *options])
    assert refused.exit_code != 0 and "not anchored" in refused.output
    path.write_bytes(original)
    assert runner.invoke(cli, ["audit", "--verify", *options]).exit_code == 0


def test_the_daily_run_anchors_the_log_without_changing_what_it_publishes(tmp_path: Path) -> None:
    drop = ROOT / "data" / "samples" / "drop"
    plain = run_daily(drop, DATE, RunStore(tmp_path / "plain"))
    assert not (tmp_path / "plain" / "audit-anchors").exists()  # no log yet: nothing to anchor
    audited_store = tmp_path / "audited"
    settings = AuditSettings.for_store(audited_store, environ={})
    from dibao.serve.audit.recorder import AuditRecorder

    recorder = AuditRecorder(settings)
    recorder.record(user="cw", role="caseworker", action="household", path="/households/DB1", query="",
                    status=404)
    recorder.close()
    audited = run_daily(drop, DATE, RunStore(audited_store))
    anchors = (settings.anchor_dir / ANCHORS).read_text(encoding="utf-8").splitlines()
    assert len(anchors) == 1 and json.loads(anchors[0])["entries"] == 1
    assert audited.manifest["content_sha256"] == plain.manifest["content_sha256"]
    assert settings.anchor_dir.parent == audited_store and not str(settings.anchor_dir).startswith(
        str(audited_store / "runs"))
    assert verify_log(settings).ok


def test_the_app_is_guarded_outermost(served: tuple[TestClient, AuditSettings]) -> None:
    client, _ = served
    app = client.app
    assert isinstance(app, FastAPI)
    stack = app.middleware_stack
    assert type(stack).__name__ == "RequestLimitMiddleware"
    assert type(getattr(stack, "app", None)).__name__ == "AuditTrailMiddleware"


def test_a_throttled_lookup_is_logged_once(store: Path, tmp_path: Path, tokens: dict[str, str],
                                           own_household: str) -> None:
    settings = settings_in(store, tmp_path)
    with TestClient(app_for(store, settings, throttled=True)) as client:
        statuses = [client.get(f"/households/{own_household}", headers=auth(tokens["cw"])).status_code
                    for _ in range(45)]
    assert 429 in statuses and 200 in statuses
    logged = [e["status"] for e in query_audit(settings.audit_dir) if e["action"] != "suppressed"]
    assert sorted(logged) == sorted(statuses)  # one entry per request, the 429s included (the throttle's own)
