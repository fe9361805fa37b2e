"""Issue 13, findings 4 and 5 against the real app (FastAPI TestClient; tests/test_api_serve_options.py has the
ones at the HTTP-server level): throttling, the security headers, /docs without a CDN, and POST lookups.

Each throttling test reproduces an audit finding: 2,000 random tokens from one address, a caseworker's flood of
lookups, and recovering a masked ID number (``3404**********3623``) by trying check-digit-valid birth dates — and
shows it now meets 429. The app here keeps its buckets where ``dibao serve`` keeps them (``STORE/api/``, SQLite);
a fake clock stands still or jumps, so counts are exact.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import polars as pl
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dibao.normalise.ids import expected_check_char
from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from dibao.serve.app import create_app
from dibao.serve.audit import query_audit
from dibao.serve.buckets import Buckets, Draw
from dibao.serve.docs import ASSETS
from dibao.serve.enumeration import EnumerationWatch, Suspicion
from dibao.serve.headers import script_hash
from dibao.serve.limits import DEFAULTS, Enumeration, Limits, LimitsFileError, limits_from, load_limits, per_second
from dibao.serve.masking import mask_id
from dibao.serve.throttle import client_address, is_household_lookup
from dibao.serve.tokens import add_token
from tests.api_limits import UNTHROTTLED

ROOT = Path(__file__).resolve().parent.parent
DATE = dt.date(2026, 11, 20)
OWN, OTHER = "340402", "340403"
SECURITY = {"cache-control": "no-store", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


class Clock:
    """Wall-clock seconds that move only when told (the buckets and the enumeration window read it)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("throttle")
    store = root / "store"
    run_daily(ROOT / "data" / "samples" / "drop", DATE, RunStore(store))
    return store


@pytest.fixture(scope="module")
def tokens(store: Path) -> dict[str, str]:
    tokens_file = store / "tokens.yaml"
    return {"admin": add_token(tokens_file, "管理员", "admin", []),
            "cw": add_token(tokens_file, "大通区-经办", "caseworker", [OWN]),
            "cw_other": add_token(tokens_file, "田家庵区-经办", "caseworker", [OTHER]),
            "analyst": add_token(tokens_file, "省厅-分析", "analyst", [])}


def served_app(store: Path, tmp_path: Path, limits: Limits | None = None) -> tuple[FastAPI, Clock, Path]:
    """The app as ``dibao serve`` builds it (default limits unless told), on a copy of the store, so its buckets
    (``STORE/api/throttle.sqlite3``) and audit log start empty; the clock is a fake."""
    own = tmp_path / "store"
    shutil.copytree(store, own, ignore=shutil.ignore_patterns("api", "audit"))
    app = create_app(own, own / "tokens.yaml", limits=limits)
    clock = Clock()
    app.state.throttle.buckets.clock = clock
    return app, clock, own


@pytest.fixture
def served(store: Path, tokens: dict[str, str], tmp_path: Path) -> Iterator[tuple[TestClient, Clock, Path]]:
    app, clock, own = served_app(store, tmp_path)
    with TestClient(app) as client:
        yield client, clock, own


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def links(store: Path) -> pl.DataFrame:
    return pl.read_parquet(store / "runs" / DATE.isoformat() / "person_links.parquet")


def own_person(store: Path) -> str:
    """An ID number a caseworker of OWN finds (their own county's household)."""
    facts = pl.read_parquet(store / "runs" / DATE.isoformat() / "household_facts.parquet")
    own_households = facts.filter(pl.col("county_code") == OWN)["household_key"]
    people = links(store).filter(pl.col("household").is_in(own_households.implode())
                                 & pl.col("person_key").str.contains(r"^[0-9]{17}[0-9X]$"))
    return str(people.sort("person_key")["person_key"][0])


def too_many(response: httpx.Response, limit: str) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    retry_after = int(response.headers["retry-after"])
    body: dict[str, Any] = response.json()
    assert body["status"] == 429 and body["limit"] == limit and body["retry_after"] == retry_after >= 1
    assert "请" in body["detail"] and "retry after" in body["detail"]  # Chinese, English beside
    return body


# --- finding 4: throttling ------------------------------------------------------------------------------------


def test_random_tokens_from_one_address_are_locked_out_long_before_2000(
        served: tuple[TestClient, Clock, Path], tokens: dict[str, str]) -> None:
    client, clock, _ = served
    statuses = []
    for _ in range(2000):  # the audit's attempt: 2,000 random tokens from one address
        statuses.append(client.get("/candidates", headers=auth(secrets.token_urlsafe(32))).status_code)
        if statuses[-1] == 429:
            break
    assert statuses == [401] * 6 + [429]  # 5 failures a minute allowed; the 6th locks the address out
    locked = client.get("/candidates", headers=auth(tokens["admin"]))  # a good token from that address: still 429
    assert too_many(locked, "failed_auth")["retry_after"] == 900
    assert "认证失败次数过多" in locked.json()["detail"]
    other = TestClient(client.app, client=("192.0.2.44", 50000))  # another address is not affected
    assert other.get("/candidates", headers=auth(tokens["admin"])).status_code == 200
    clock.advance(899)
    assert int(client.get("/health").headers["retry-after"]) == 1
    clock.advance(2)
    assert client.get("/candidates", headers=auth(tokens["admin"])).status_code == 200


def test_failed_authentication_refills_at_five_a_minute(served: tuple[TestClient, Clock, Path]) -> None:
    client, clock, _ = served
    for _ in range(5):
        assert client.get("/runs", headers=auth("wrong")).status_code == 401
        clock.advance(12)  # exactly the refill rate: never runs out
    for _ in range(5):
        assert client.get("/runs", headers=auth("wrong")).status_code == 401
        clock.advance(12)
    assert client.get("/runs").status_code == 401  # no credentials at all: not a guess, not counted
    assert client.get("/health").status_code == 200


def test_caseworker_lookup_flood_meets_429(served: tuple[TestClient, Clock, Path], store: Path,
                                           tokens: dict[str, str]) -> None:
    client, clock, own = served
    person = own_person(store)
    statuses = [client.get(f"/households/{person}", headers=auth(tokens["cw"])).status_code for _ in range(31)]
    assert statuses == [200] * 30 + [429]  # burst 30, then 2 a second
    refused = client.post("/households/lookup", json={"id": person}, headers=auth(tokens["cw"]))
    assert too_many(refused, "lookups")["retry_after"] == 1
    clock.advance(0.5)  # one lookup's worth refilled
    assert client.get(f"/households/{person}", headers=auth(tokens["cw"])).status_code == 200
    assert client.get(f"/households/{person}", headers=auth(tokens["cw"])).status_code == 429
    assert client.get(f"/households/{person}", headers=auth(tokens["admin"])).status_code == 200  # per token
    assert client.get("/candidates?size=1", headers=auth(tokens["cw"])).status_code == 200  # lists: own bucket
    entries = query_audit(own / "audit", user="大通区-经办", action="household")
    assert [e["status"] for e in entries].count(429) == 3  # refused lookups are audited, with who and what
    assert all(e["path"].startswith("/households/") for e in entries)


def test_per_address_and_per_token_buckets(served: tuple[TestClient, Clock, Path], tokens: dict[str, str]) -> None:
    client, clock, _ = served
    assert [client.get("/health").status_code for _ in range(41)] == [200] * 40 + [429]
    too_many(client.get("/health"), "per_address")
    clock.advance(0.1)  # 10 a second: one more
    assert [client.get("/health").status_code for _ in range(2)] == [200, 429]
    # A token's bucket holds across addresses: 60 requests of a caseworker from anywhere, then 5 a second.
    clients = [TestClient(client.app, client=(f"192.0.2.{n}", 40000)) for n in range(1, 4)]
    statuses = [clients[i % 3].get("/runs", headers=auth(tokens["cw"])).status_code for i in range(61)]
    assert statuses == [200] * 60 + [429]
    too_many(clients[0].get("/runs", headers=auth(tokens["cw"])), "per_token")


def test_client_address_and_lookup_paths() -> None:
    assert client_address({"client": ("203.0.113.9", 1)}) == "203.0.113.9"
    assert client_address({"client": ("2001:db8:1:2:aaaa::1", 1)}) == "2001:db8:1:2::/64"
    assert client_address({"client": ("2001:db8:1:2:bbbb::7", 1)}) == "2001:db8:1:2::/64"  # same host's /64
    assert client_address({"client": ("::ffff:203.0.113.9", 1)}) == "203.0.113.9"
    assert client_address({"client": None}) == "unknown"
    assert is_household_lookup("GET", "/households/340402198001011234")
    assert is_household_lookup("POST", "/households/lookup")
    assert not is_household_lookup("GET", "/households/a/b") and not is_household_lookup("GET", "/candidates")
    assert not is_household_lookup("POST", "/households/340402198001011234")


def check_digit_valid_candidates(masked_id_owner: str) -> list[str]:
    """What the audit tried: the county known, the birth date hidden, the last four shown (sequence and check
    digit); every date from 1920 to 2026 whose check digit comes out as shown, oldest first."""
    region, tail = masked_id_owner[:6], masked_id_owner[14:]
    day, last = dt.date(1920, 1, 1), dt.date(2026, 12, 31)
    found = []
    while day <= last:
        first17 = f"{region}{day:%Y%m%d}{tail[:3]}"
        if expected_check_char(first17) == tail[3]:
            found.append(first17 + tail[3])
        day += dt.timedelta(days=1)
    return found


def test_recovering_a_masked_id_by_enumeration_meets_429_long_before_success(
        store: Path, tokens: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = own_person(store)
    masked = mask_id(target)
    assert masked is not None and masked.startswith(target[:4]) and masked.endswith(target[-4:])
    candidates = check_digit_valid_candidates(target)
    position = candidates.index(target) + 1
    assert position > 81, "pick a target the limits have to stop (its date is not among the first tried)"
    assert len(candidates) > 3000  # ~1 in 11 of 39,000 dates: half of them, ~1,700, tried on average

    # Without limits (as audited), trying the candidates in order recovers the ID number: the finding.
    app, _, _ = served_app(store, tmp_path / "before", UNTHROTTLED)
    with TestClient(app) as client:
        statuses = [client.get(f"/households/{c}", headers=auth(tokens["cw"])).status_code
                    for c in candidates[:position]]
    assert statuses == [404] * (position - 1) + [200]

    # As served now: 20 misses, then 429 for every lookup — found or not (decided before looking).
    app, clock, own = served_app(store, tmp_path / "after")
    started = time.monotonic()
    with TestClient(app) as client, caplog.at_level(logging.WARNING, logger="dibao.api.throttle"):
        answered = []
        for candidate in candidates:
            response = client.get(f"/households/{candidate}", headers=auth(tokens["cw"]))
            if response.status_code == 429:
                too_many(response, "lookup_misses")
                break
            answered.append(response.status_code)
        assert answered == [404] * 20  # the 21st request meets 429 (stated: at most 21 requests)
        assert time.monotonic() - started < 30
        assert client.get(f"/households/{target}", headers=auth(tokens["cw"])).status_code == 429
        assert client.post("/households/lookup", json={"id": target}, headers=auth(tokens["cw"])).status_code == 429

        # Patient: one try whenever a miss has refilled (60 an hour) for a whole simulated hour.
        tried = len(answered)
        for _ in range(60):
            clock.advance(60)
            response = client.get(f"/households/{candidates[tried]}", headers=auth(tokens["cw"]))
            assert response.status_code in (200, 404)
            tried += 1
            assert client.get(f"/households/{candidates[tried]}", headers=auth(tokens["cw"])).status_code == 429
    assert tried == 80  # 80 candidates an hour: the ~1,700 expected take about a day, every one audited
    suspected = query_audit(own / "audit", action="enumeration-suspected")
    assert suspected and suspected[0]["user"] == "大通区-经办" and "not_found=10" in suspected[0]["query"]
    assert target not in json.dumps(suspected)
    assert any("possible enumeration" in r.getMessage() and "大通区-经办" in r.getMessage() for r in caplog.records)
    assert not any(target in r.getMessage() for r in caplog.records)  # no ID number in the log


def test_enumeration_warning_on_distinct_ids(served: tuple[TestClient, Clock, Path], store: Path,
                                             tokens: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    client, clock, own = served
    found = links(store).filter(pl.col("person_key").str.contains(r"^[0-9]{17}[0-9X]$")
                                & pl.col("household").is_not_null())["person_key"]
    with caplog.at_level(logging.WARNING, logger="dibao.api.throttle"):
        for person in found.unique().sort()[:30]:  # 30 different IDs a minute, as an admin (found or not)
            client.get(f"/households/{person}", headers=auth(tokens["admin"]))
            clock.advance(1)
    entries = query_audit(own / "audit", action="enumeration-suspected")
    assert len(entries) == 1 and "distinct=30" in entries[0]["query"] and entries[0]["count"] == 30
    assert sum("possible enumeration" in r.getMessage() for r in caplog.records) == 1


def test_buckets_are_shared_by_worker_processes(tmp_path: Path) -> None:
    """Two connections to one file behave as two worker processes: a draw in one is seen by the other."""
    clock = Clock()
    first, second = Buckets(tmp_path / "t.sqlite3", clock=clock), Buckets(tmp_path / "t.sqlite3", clock=clock)
    draw = Draw("lookup:x", rate=2.0, burst=3.0)
    assert first.admit([draw]) is None and second.admit([draw]) is None and first.admit([draw]) is None
    refused = second.admit([draw])
    assert refused is not None and refused.key == "lookup:x" and refused.retry_after == 1
    lock = Draw("auth:a", rate=5 / 60, burst=1.0)
    assert not first.fail(lock, 900) and second.fail(lock, 900)
    assert first.admit([], locks=["auth:a"]) is not None and second.locked_until("auth:a") == clock.now + 900
    # All or nothing: a refused request charges no bucket.
    roomy = Draw("addr:a", rate=1.0, burst=5.0)
    assert second.admit([roomy, draw]) is not None
    assert [first.admit([roomy]) for _ in range(5)] == [None] * 5
    assert (tmp_path / "t.sqlite3").stat().st_mode & 0o777 == 0o600
    first.close()
    second.close()


def test_limits_file(tmp_path: Path) -> None:
    limits = load_limits(None)
    assert limits.lookups["caseworker"] is not None and limits.lookups["caseworker"].per_second == 2.0
    assert limits.model_dump(mode="json")["lookup_misses"] == DEFAULTS["lookup_misses"]
    path = tmp_path / "limits.yaml"
    path.write_text(yaml.safe_dump({"lookups": {"caseworker": {"rate": "1/s"}, "admin": None},
                                    "failed_auth": {"lockout_seconds": 60}}), encoding="utf-8")
    mine = load_limits(path)
    assert mine.lookups["caseworker"] is not None and mine.lookups["caseworker"].burst == 30  # the rest default
    assert mine.lookups["admin"] is None and mine.failed_auth.lockout_seconds == 60
    assert per_second("60/h") == pytest.approx(1 / 60) and per_second("5/min") == pytest.approx(1 / 12)
    for bad, word in (({"lookups": {"superuser": None}}, "superuser"), ({"per_address": {"rate": "fast"}}, "fast"),
                      ({"per_address": {"burst": 0}}, "burst"), ({"per_adress": {}}, "per_adress")):
        path.write_text(yaml.safe_dump(bad), encoding="utf-8")
        with pytest.raises(LimitsFileError, match=word):
            load_limits(path)
    assert limits_from({"per_address": {"rate": "1/s"}}).per_address.burst == 40


# --- finding 5: headers on every answer, /docs without a CDN ------------------------------------------------------


def _answer(case: str, store: Path, tokens: dict[str, str], tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> httpx.Response:
    """One answer of the kind ``case`` names, from the app as served."""
    app, _, _ = served_app(store, tmp_path)
    person = own_person(store)
    mistyped = person[:17] + ("0" if person[17] != "0" else "1")  # the check digit no longer fits
    requests: dict[str, Callable[[TestClient], httpx.Response]] = {
        "200 /health": lambda c: c.get("/health"),
        "200 household": lambda c: c.get(f"/households/{person}", headers=auth(tokens["cw"])),
        "200 POST lookup": lambda c: c.post("/households/lookup", json={"id": person}, headers=auth(tokens["cw"])),
        "200 /candidates": lambda c: c.get("/candidates?size=2", headers=auth(tokens["admin"])),
        "200 /coverage": lambda c: c.get("/coverage", headers=auth(tokens["analyst"])),
        "200 /openapi.json": lambda c: c.get("/openapi.json"),
        "200 /docs": lambda c: c.get("/docs"),
        "200 /docs asset": lambda c: c.get("/docs/assets/swagger-ui.css"),
        "401": lambda c: c.get("/candidates"),
        "403": lambda c: c.get("/candidates", headers=auth(tokens["analyst"])),
        "404 household": lambda c: c.get("/households/NO-SUCH", headers=auth(tokens["cw"])),
        "404 endpoint": lambda c: c.get("/no/such/endpoint"),
        "405": lambda c: c.post("/health"),
        "413": lambda c: c.post("/households/lookup", content=b"x" * 20000, headers=auth(tokens["cw"])),
        "422 ID": lambda c: c.get(f"/households/{mistyped}", headers=auth(tokens["cw"])),
        "422 body": lambda c: c.post("/households/lookup", json={"number": 1}, headers=auth(tokens["cw"])),
        "429": lambda c: [c.get("/health") for _ in range(41)][-1],
        "500": lambda c: c.get("/runs", headers=auth(tokens["admin"])),
    }
    if case == "500":
        def broken(date: dt.date) -> dict[str, Any]:
            raise RuntimeError("boom")

        monkeypatch.setattr(app.state.snapshots.files, "manifest", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        return requests[case](client)


HEADER_CASES = ["200 /health", "200 household", "200 POST lookup", "200 /candidates", "200 /coverage",
                "200 /openapi.json", "200 /docs", "200 /docs asset", "401", "403", "404 household", "404 endpoint",
                "405", "413", "422 ID", "422 body", "429", "500"]


@pytest.mark.parametrize("case", HEADER_CASES)
def test_every_answer_carries_the_security_headers(case: str, store: Path, tokens: dict[str, str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    response = _answer(case, store, tokens, tmp_path, monkeypatch)
    assert response.status_code == int(case.split()[0]), response.text
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    if case != "200 /docs":
        assert csp.startswith("default-src 'none'")
    assert "strict-transport-security" not in response.headers  # plain HTTP here; over TLS: the process test


def test_no_published_run_is_answered_with_the_headers_too(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    admin = add_token(tokens_file, "a", "admin", [])
    with TestClient(create_app(tmp_path / "empty", tokens_file)) as client:
        response = client.get("/households/DB1", headers=auth(admin))
    assert response.status_code == 503 and all(response.headers[k] == v for k, v in SECURITY.items())


def test_docs_page_and_its_assets_come_from_this_server_only(served: tuple[TestClient, Clock, Path]) -> None:
    client, _, _ = served
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "SwaggerUIBundle" in html
    assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9.-]+", html.replace("http://testserver", "")), \
        "the /docs page names another host"
    referenced = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert sorted(referenced) == ["/docs/assets/favicon.png", "/docs/assets/swagger-ui-bundle.js",
                                  "/docs/assets/swagger-ui.css"]
    assert "url: '/openapi.json'" in html and '"validatorUrl": null' in html
    for url in referenced:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000
        assert asset.headers["content-type"] == ASSETS[url.rsplit("/", 1)[1]]
    assert b"SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").content
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    (inline,) = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)  # the one inline script, allowed by hash
    assert directives["script-src"] == f"'self' {script_hash(inline)}"
    assert client.get("/docs/assets/redoc.standalone.js").status_code == 404  # only the three assets
    assert client.get("/docs/assets/..%2f..%2fcore.py").status_code == 404
    assert client.get("/redoc").status_code == 404 and client.get("/docs/oauth2-redirect").status_code == 404


# --- POST /households/lookup --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unthrottled(store: Path, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[TestClient, Path]]:
    audit = tmp_path_factory.mktemp("post-audit")
    with TestClient(create_app(store, store / "tokens.yaml", audit, limits=UNTHROTTLED,
                               throttle_state=audit / "t.sqlite3")) as client:
        yield client, audit


def lookup_texts(store: Path) -> list[str]:
    """What a caseworker types: ID numbers of both counties, household numbers, messy and malformed forms."""
    frame = links(store)
    ids = frame.filter(pl.col("person_key").str.contains(r"^[0-9]{17}[0-9X]$"))["person_key"].unique().sort()
    households = frame["household"].drop_nulls().unique().sort()
    texts = [*ids[:40], *ids[-20:], *households[:20]]
    first = str(ids[0])
    texts += [f" {first[:6]} {first[6:14]} {first[14:]} ", first.lower(), first[:17] + "0", first[:15], "NO-SUCH",
              "３４０４０２", "1" * 64]
    return texts


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(data=st.data())
def test_post_lookup_answers_exactly_what_get_answers(data: st.DataObject, unthrottled: tuple[TestClient, Path],
                                                      store: Path, tokens: dict[str, str]) -> None:
    client, _ = unthrottled
    text = data.draw(st.sampled_from(lookup_texts(store)), label="id")
    who = data.draw(st.sampled_from(["cw", "cw_other", "admin", "analyst"]), label="token")
    by_url = client.get(f"/households/{quote(text, safe='')}", headers=auth(tokens[who]))
    by_body = client.post("/households/lookup", json={"id": text}, headers=auth(tokens[who]))
    assert by_body.status_code == by_url.status_code
    assert by_body.headers["content-type"] == by_url.headers["content-type"]
    assert by_body.json() == by_url.json()


def test_post_lookup_is_audited_with_the_id_and_validates_its_body(unthrottled: tuple[TestClient, Path],
                                                                   store: Path, tokens: dict[str, str]) -> None:
    client, audit = unthrottled
    person = own_person(store)
    assert client.post("/households/lookup", json={"id": person}, headers=auth(tokens["cw"])).status_code == 200
    entry = query_audit(audit, user="大通区-经办")[-1]
    assert (entry["action"], entry["path"], entry["status"]) == ("household", "/households/lookup", 200)
    # the ID as its keyed hash only (dibao/serve/audit/ids.py; `dibao audit --find-id` finds it)
    assert entry["query"].startswith("id=[id:") and person not in entry["query"]
    assert client.post("/households/lookup", json={"id": person}).status_code == 401  # token first
    for body in ({}, {"id": ""}, {"id": "1" * 65}, {"id": person, "extra": 1}, {"id": 340402}):
        response = client.post("/households/lookup", json=body, headers=auth(tokens["cw"]))
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    bad_json = client.post("/households/lookup", content=b"{", headers={**auth(tokens["cw"]),
                                                                        "Content-Type": "application/json"})
    assert bad_json.status_code == 422
    assert client.post(f"/households/{person}", headers=auth(tokens["cw"])).status_code == 405


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(steps=st.lists(st.tuples(st.floats(0, 30), st.sampled_from("abcdefgh"), st.booleans()), max_size=80),
       not_found=st.integers(1, 6), distinct=st.integers(1, 6))
def test_enumeration_watch_agrees_with_counting_the_window_afresh(
        steps: list[tuple[float, str, bool]], not_found: int, distinct: int) -> None:
    rule = Enumeration(window_seconds=60, not_found=not_found, distinct_ids=distinct)
    watch = EnumerationWatch(rule)
    now, seen, alerted_at = 0.0, [], float("-inf")
    for gap, subject, missed in steps:
        now += gap
        seen.append((now, subject, missed))
        window = [s for s in seen if s[0] > now - 60]
        misses, subjects = sum(m for _, _, m in window), len({s for _, s, _ in window})
        expected = None
        if now - alerted_at >= 60 and (misses >= not_found or subjects >= distinct):
            alerted_at, expected = now, Suspicion(len(window), misses, subjects, 60)
        assert watch.observe("cw", subject, missed, now) == expected


def test_a_damaged_throttle_file_is_set_aside_and_the_buckets_start_full(tmp_path: Path) -> None:
    """The state is written without fsync (no disk wait per request); a power cut may damage it. The service then
    starts with full buckets rather than refusing to start or refusing everyone."""
    state = tmp_path / "throttle.sqlite3"
    state.write_bytes(b"not a database, cut by a power failure" * 100)
    buckets = Buckets(state, clock=Clock())
    draw = Draw("lookup:x", rate=1.0, burst=2.0)
    assert buckets.admit([draw]) is None and buckets.admit([draw]) is None and buckets.admit([draw]) is not None
    assert (tmp_path / "throttle.sqlite3.damaged").read_bytes().startswith(b"not a database")
    assert state.stat().st_mode & 0o777 == 0o600
    buckets.close()


def test_a_miss_is_counted_before_its_answer_reaches_the_client(store: Path, tokens: dict[str, str],
                                                                tmp_path: Path) -> None:
    """The client's next lookup may land on another worker process at once: by the time the 404 starts going out,
    the shared state must already hold the miss (counted after the send, a second worker let one more through)."""
    import sqlite3

    app, _, own = served_app(store, tmp_path)
    burst = load_limits(None).lookup_misses["caseworker"].burst
    seen: list[tuple[int, float | None]] = []

    def misses_left() -> float | None:  # as another worker process reads the shared file
        with sqlite3.connect(own / "api" / "throttle.sqlite3") as other:
            row = other.execute("SELECT tokens FROM buckets WHERE key = ?", ("miss:大通区-经办",)).fetchone()
        return None if row is None else float(row[0])

    async def lookup_unknown() -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": "/households/DB999999999999", "raw_path": b"/households/DB999999999999",
                 "root_path": "", "query_string": b"", "client": ("127.0.0.9", 50000), "server": ("testserver", 80),
                 "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {tokens['cw']}".encode())]}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen.append((message["status"], misses_left()))

        await app(scope, receive, send)

    with TestClient(app) as client:
        assert client.portal is not None
        client.portal.call(lookup_unknown)
    assert seen and seen[0][0] == 404
    assert seen[0][1] is not None and seen[0][1] <= burst - 1, seen
