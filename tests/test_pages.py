"""The web pages (/ui/) against the real app with FastAPI's TestClient: log-in and sessions, CSRF, the same
scoping, masking, 404 rule, suppression, audit and throttling as the API, the downloads, security headers and an
accessibility check of every page. The browser journey is tests/test_pages_browser.py."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
import stat
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from dibao.normalise.ids import check_id, expected_check_char
from dibao.pipeline import run_daily
from dibao.publish.contract import LIST_LABELS
from dibao.publish.store import RunStore
from dibao.publish.worklist_rows import COLUMNS
from dibao.serve.app import create_app
from dibao.serve.audit import query_audit
from dibao.serve.limits import limits_from
from dibao.serve.pages.sessions import SESSIONS_FILE
from dibao.serve.pages.web import safe_next
from dibao.serve.problems import AGGREGATES_ONLY
from dibao.serve.tokens import add_token, revoke_token
from tests.api_limits import UNTHROTTLED
from tests.page_checks import accessibility_problems

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "samples" / "drop"
DATES = [dt.date(2026, 11, 19), dt.date(2026, 11, 20)]
OWN = "340402"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pages") / "store"
    for date in DATES:
        run_daily(SAMPLE, date, RunStore(root))
    return root


@pytest.fixture(scope="module")
def tokens(store: Path) -> dict[str, str]:
    book = store / "tokens.yaml"
    return {"cw": add_token(book, "大通区-经办", "caseworker", [OWN]),
            "analyst": add_token(book, "省厅-分析", "analyst", []),
            "admin": add_token(book, "管理员", "admin", [])}


@pytest.fixture(scope="module")
def app(store: Path, tokens: dict[str, str]) -> FastAPI:
    return create_app(store, store / "tokens.yaml", limits=UNTHROTTLED)


@pytest.fixture(scope="module")
def running(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:  # starts the snapshot holder once
        yield client


def login(app: FastAPI, token: str, base_url: str = "http://testserver") -> TestClient:
    client = TestClient(app, base_url=base_url)
    form = client.get("/ui/login")
    assert form.status_code == 200
    answer = client.post("/ui/login", data={"csrf": CSRF.search(form.text).group(1), "token": token},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(page: httpx.Response) -> str:
    return CSRF.search(page.text).group(1)


@pytest.fixture(scope="module")
def cw(app: FastAPI, running: TestClient, tokens: dict[str, str]) -> TestClient:
    return login(app, tokens["cw"])


@pytest.fixture(scope="module")
def analyst(app: FastAPI, running: TestClient, tokens: dict[str, str]) -> TestClient:
    return login(app, tokens["analyst"])


@pytest.fixture(scope="module")
def admin(app: FastAPI, running: TestClient, tokens: dict[str, str]) -> TestClient:
    return login(app, tokens["admin"])


def api(running: TestClient, token: str, path: str, **params: Any) -> Any:
    answer = running.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def lists(store: Path, name: str, date: dt.date = DATES[-1]) -> pl.DataFrame:
    file = {"exit": "exit_candidates", "inclusion": "inclusion_candidates", "flag": "flags"}[name]
    return pl.read_parquet(store / "runs" / date.isoformat() / f"{file}.parquet")


def flagged_household(store: Path) -> str:
    exits = lists(store, "exit").filter(pl.col("county_code") == OWN)
    return str(exits.sort("subject_id")["subject_id"][0])


def other_county_household(store: Path) -> str:
    exits = lists(store, "exit").filter(pl.col("county_code") != OWN)
    return str(exits.sort("subject_id")["subject_id"][0])


def text_of(page: str) -> str:
    """The page's text with tags removed and entities decoded (what a reader sees, roughly)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def total_of(page: str) -> int:
    """The row count a list page states: 共 N 条."""
    found = re.search(r"共\s*([0-9]+)\s*条", text_of(page))
    assert found is not None
    return int(found.group(1))


# --- log-in, sessions, redirects ---------------------------------------------------------------------------------


def test_root_and_ui_redirect_to_the_pages(running: TestClient) -> None:
    for path in ("/", "/ui", "/index.html"):
        answer = running.get(path, follow_redirects=False)
        assert answer.status_code == 307 and answer.headers["location"] == "/ui/"
    fresh = TestClient(running.app)
    answer = fresh.get("/ui/lists?type=flag", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=/ui/lists%3Ftype%3Dflag"


def test_session_cookie_attributes_over_http_and_https(app: FastAPI, running: TestClient,
                                                       tokens: dict[str, str]) -> None:
    for base, name, secure in (("http://testserver", "dibao_session", False),
                               ("https://testserver", "__Host-dibao_session", True)):
        client = TestClient(app, base_url=base)
        form = client.get("/ui/login")
        login_cookie = form.headers["set-cookie"]
        assert "HttpOnly" in login_cookie and "SameSite=Strict" in login_cookie
        answer = client.post("/ui/login", data={"csrf": csrf_of(form), "token": tokens["cw"]},
                             follow_redirects=False)
        cookies = answer.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith(name + "="))
        assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/" in session
        assert "Max-Age=36000" in session  # DIBAO_UI_SESSION_HOURS default 10
        assert ("; Secure" in session) is secure
        assert client.get("/ui/", follow_redirects=False).status_code == 200


def test_sessions_file_is_owner_only_and_holds_no_cookie(store: Path, cw: TestClient) -> None:
    path = store / "api" / SESSIONS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cookie = cw.cookies.get("dibao_session")
    assert cookie and cookie.encode() not in path.read_bytes()


def test_bad_and_expired_tokens_are_refused_and_audited(app: FastAPI, store: Path, running: TestClient) -> None:
    client = TestClient(app)
    form = client.get("/ui/login")
    answer = client.post("/ui/login", data={"csrf": csrf_of(form), "token": "not-a-token"})
    assert answer.status_code == 401 and "令牌无效" in answer.text
    expired = add_token(store / "tokens.yaml", "过期-经办", "caseworker", [OWN], lifetime=dt.timedelta(seconds=1))
    time.sleep(1.2)
    app.state.tokens.recheck_seconds = 0.0
    form = client.get("/ui/login")
    late = client.post("/ui/login", data={"csrf": csrf_of(form), "token": expired})
    assert late.status_code == 401 and "已于" in late.text and "过期" in late.text
    entries = [e for e in query_audit(store / "audit") if e.get("action") == "login"]
    assert any(e["status"] == 401 and e["user"] is None for e in entries)


def test_log_in_needs_the_forms_own_value(app: FastAPI, running: TestClient, tokens: dict[str, str]) -> None:
    client = TestClient(app)
    form = client.get("/ui/login")
    no_cookie = TestClient(app).post("/ui/login", data={"csrf": csrf_of(form), "token": tokens["cw"]})
    assert no_cookie.status_code == 403 and "表单已失效" in no_cookie.text
    wrong = client.post("/ui/login", data={"csrf": "x" + csrf_of(form), "token": tokens["cw"]})
    assert wrong.status_code == 403
    assert client.get("/ui/", follow_redirects=False).status_code == 303  # not logged in


def test_every_form_checks_its_csrf_token(app: FastAPI, running: TestClient, tokens: dict[str, str],
                                          store: Path) -> None:
    client = login(app, tokens["cw"])
    token = csrf_of(client.get("/ui/"))
    household = flagged_household(store)
    assert client.post("/ui/households", data={"q": household}).status_code == 403
    assert client.post("/ui/households", data={"csrf": token[:-1], "q": household}).status_code == 403
    cross = client.post("/ui/households", data={"csrf": token, "q": household},
                        headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    foreign = client.post("/ui/households", data={"csrf": token, "q": household},
                          headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    assert client.post("/ui/logout", data={"csrf": ""}, follow_redirects=False).status_code == 403
    assert client.get("/ui/", follow_redirects=False).status_code == 200  # still logged in
    ok = client.post("/ui/households", data={"csrf": token, "q": household})
    assert ok.status_code == 200


def test_logout_ends_the_session_for_every_copy_of_the_cookie(app: FastAPI, running: TestClient,
                                                              tokens: dict[str, str], store: Path) -> None:
    client = login(app, tokens["cw"])
    cookie = client.cookies.get("dibao_session")
    answer = client.post("/ui/logout", data={"csrf": csrf_of(client.get("/ui/"))}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login?why=logout"
    assert "dibao_session=; Max-Age=0" in answer.headers["set-cookie"]
    replay = TestClient(app, cookies={"dibao_session": cookie})
    again = replay.get("/ui/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/ui/login")
    actions = [e["action"] for e in query_audit(store / "audit") if e.get("user") == "大通区-经办"]
    assert "login" in actions and "logout" in actions


def test_a_revoked_token_ends_its_sessions(app: FastAPI, running: TestClient, store: Path) -> None:
    book = store / "tokens.yaml"
    token = add_token(book, "临时-经办", "caseworker", [OWN])
    client = login(app, token)
    assert client.get("/ui/", follow_redirects=False).status_code == 200
    revoke_token(book, "临时-经办")
    app.state.tokens.recheck_seconds = 0.0
    answer = client.get("/ui/", follow_redirects=False)
    assert answer.status_code == 303 and "why=unknown" in answer.headers["location"]
    assert "令牌已被撤销" in client.get(answer.headers["location"]).text


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_after_log_in_a_browser_only_goes_to_this_sites_pages(target: str) -> None:
    chosen = safe_next(target)
    assert chosen is None or (chosen.startswith("/ui/") and "//" not in chosen and "\\" not in chosen)


# --- 户查询 -------------------------------------------------------------------------------------------------------


def test_a_flagged_household_shows_its_reasons_figures_and_standards(cw: TestClient, running: TestClient,
                                                                     tokens: dict[str, str], store: Path) -> None:
    household = flagged_household(store)
    page = cw.post("/ui/households", data={"csrf": csrf_of(cw.get("/ui/")), "q": household})
    assert page.status_code == 200
    text = text_of(page.text)
    answer = api(running, tokens["cw"], f"/households/{household}")
    decisions = [d for h in answer["households"] for d in h["decisions"]]
    assert decisions
    for d in decisions:
        assert d["label"] in text and d["detail"] in text and d["reference"] in text
        for p in d["parameters"].values():
            assert f"{p['value']:g}" in text.replace(",", "") and p["from"] in text
            assert p["unit_label"] in text
    for h in answer["households"]:
        for m in h["members"]:
            assert (m["id_number"] or "—") in text and m["method_label"] in text


def test_income_is_shown_beside_the_dibao_standard(cw: TestClient, store: Path, running: TestClient,
                                                   tokens: dict[str, str]) -> None:
    exits = lists(store, "exit").filter(pl.col("reasons").list.contains("income_above_standard"))
    household = str(exits["subject_id"][0])
    admin_token = tokens["admin"]
    answer = api(running, admin_token, f"/households/{household}")
    decision = next(d for h in answer["households"] for d in h["decisions"] if d["code"] == "income_above_standard")
    standard = decision["parameters"]["dibao_standard"]
    client = login(running.app, admin_token)
    text = text_of(client.get("/ui/households", params={"q": household}).text)
    assert "低保标准" in text and f"{standard['value']:g} 元/人/月" in text and f"自 {standard['from']}" in text
    assert f"{decision['figures']['per_capita_income']:g} 元/人/月" in text.replace(",", "")


def test_out_of_county_answers_exactly_like_unknown(cw: TestClient, store: Path) -> None:
    other = other_county_household(store)
    unknown = other[:-3] + "999"
    pages = {q: cw.get("/ui/households", params={"q": q}) for q in (other, unknown)}
    assert {p.status_code for p in pages.values()} == {404}
    bodies = {p.text.replace(q, "QUERY") for q, p in pages.items()}
    assert len(bodies) == 1
    token = csrf_of(cw.get("/ui/"))
    posted = {q: cw.post("/ui/households", data={"csrf": token, "q": q}) for q in (other, unknown)}
    assert len({p.text.replace(q, "QUERY") for q, p in posted.items()}) == 1


@given(st.dates(dt.date(1930, 1, 1), dt.date(2010, 12, 31)), st.integers(min_value=0, max_value=999))
@settings(max_examples=25, deadline=None)
def test_any_unknown_id_number_gets_the_not_found_page(cw: TestClient, birth: dt.date, n: int) -> None:
    first17 = f"340402{birth:%Y%m%d}{n:03d}"
    number = first17 + expected_check_char(first17)
    page = cw.get("/ui/households", params={"q": number})
    assert page.status_code in (200, 404)
    if page.status_code == 404:
        assert "未找到匹配的证件号码或家庭编号" in page.text


@pytest.mark.parametrize("query", ["34040219800101123", "340402198013011234", "34040219800101123X",
                                   "340402 1980 0101 12"])
def test_a_malformed_id_says_what_is_wrong(cw: TestClient, query: str) -> None:
    page = cw.get("/ui/households", params={"q": query})
    problem = check_id(query).problem()
    assert problem is not None
    assert page.status_code == 422 and problem in html.unescape(page.text)


def test_members_outside_the_callers_counties_stay_masked(cw: TestClient, running: TestClient, store: Path,
                                                          tokens: dict[str, str]) -> None:
    exits = lists(store, "exit")
    for household in exits.filter(pl.col("county_code") == OWN)["subject_id"].to_list():
        masked = api(running, tokens["cw"], f"/households/{household}")
        full = api(running, tokens["admin"], f"/households/{household}")
        text = text_of(cw.get("/ui/households", params={"q": household}).text)
        shown = {m["id_number"] for h in masked["households"] for m in h["members"] if m["id_number"]}
        hidden = {m["id_number"] for h in full["households"] for m in h["members"] if m["id_number"]} - shown
        assert all(number in text for number in shown)
        assert not any(number in text for number in hidden)


def test_the_analyst_is_refused_personal_pages_and_audited(analyst: TestClient, store: Path) -> None:
    for path in ("/ui/households?q=DB340402000002", "/ui/lists", "/ui/lists.xlsx?type=exit"):
        page = analyst.get(path)
        assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
        assert html.escape(AGGREGATES_ONLY, quote=False) in page.text
    refused = [e for e in query_audit(store / "audit") if e.get("role") == "analyst" and e.get("status") == 403]
    assert {e["action"] for e in refused} >= {"household", "candidates"}
    assert analyst.get("/ui/coverage").status_code == 200 and analyst.get("/ui/runs").status_code == 200


def test_page_lookups_are_audited_with_the_number_hashed(cw: TestClient, store: Path) -> None:
    household = flagged_household(store)
    cw.get("/ui/households", params={"q": household})
    entries = [e for e in query_audit(store / "audit") if e.get("path") == "/ui/households"]
    assert entries and entries[-1]["action"] == "household" and entries[-1]["status"] == 200
    assert household not in str(entries)


# --- 工作清单 -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["exit", "inclusion", "flag"])
def test_work_list_page_matches_the_api(cw: TestClient, running: TestClient, tokens: dict[str, str],
                                        name: str) -> None:
    page = cw.get("/ui/lists", params={"type": name})
    assert page.status_code == 200
    answer = api(running, tokens["cw"], "/candidates", type=name, size=500)
    assert total_of(page.text) == answer["total"]
    for item in answer["items"][:50]:
        assert item["subject_id"] in page.text and (item["head_name"] or "—") in page.text
    counties = set(re.findall(r"<td>([^<]+)</td><td>[^<]*</td><td>[^<]*</td>\s*<td>", page.text))
    assert counties <= {"大通区"}


def test_work_list_filters_sort_and_pages(admin: TestClient, store: Path) -> None:
    frame = lists(store, "exit")
    county = str(frame["county_code"].mode()[0])
    page = admin.get("/ui/lists", params={"type": "exit", "county": county, "sort": "-subject_id"})
    ids = re.findall(r'<a href="/ui/households\?q=([^"]+)">', page.text)
    expected = frame.filter(pl.col("county_code") == county).sort("subject_id", descending=True)["subject_id"]
    assert ids == expected.to_list()[:50]
    grace = admin.get("/ui/lists", params={"type": "exit", "grace": "90"})
    ending = frame.filter(pl.col("grace_until").is_between(DATES[-1], DATES[-1] + dt.timedelta(days=90)))
    assert total_of(grace.text) == ending.height
    late = admin.get("/ui/lists", params={"type": "flag", "from": "2026-11-20"})
    flags = lists(store, "flag").filter(pl.col("first_seen") >= DATES[-1])
    assert total_of(late.text) == flags.height
    small = admin.get("/ui/lists", params={"type": "flag", "page": "2"})
    assert "第 2 /" in text_of(small.text)
    assert admin.get("/ui/lists", params={"county": "34"}).status_code == 422


def test_work_list_download_is_the_batch_workbook_format(cw: TestClient, store: Path) -> None:
    answer = cw.get("/ui/lists.xlsx", params={"type": "exit"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    frame = pl.read_excel(io.BytesIO(answer.content), sheet_name=LIST_LABELS["exit"])
    own = lists(store, "exit").filter(pl.col("county_code") == OWN)
    assert frame.columns == [c.header for c in COLUMNS[LIST_LABELS["exit"]]]
    assert frame.height == own.height
    assert all(re.fullmatch(r"[0-9]{4}\*{10}[0-9X]{4}", v) for v in frame["户主证件号码"].to_list())
    batch = sorted((store / "runs" / DATES[-1].isoformat() / "worklists").glob(f"{OWN}_*.xlsx"))[0]
    with zipfile.ZipFile(io.BytesIO(answer.content)) as ours, zipfile.ZipFile(batch) as theirs:
        sheet = ours.read("xl/worksheets/sheet1.xml").decode()
        printed = theirs.read("xl/worksheets/sheet1.xml").decode()
        for part in (r"<cols>.*?</cols>", r"<pageSetup[^>]*>", r"<printOptions[^>]*>", r"<pageMargins[^>]*>",
                     r"<pane [^>]*>", r'<row r="1" [^>]*>'):
            ours_part, theirs_part = re.search(part, sheet), re.search(part, printed)
            assert ours_part is not None and theirs_part is not None, part
            assert ours_part.group(0) == theirs_part.group(0), part
        assert 'orientation="landscape"' in sheet and 'paperSize="9"' in sheet
    audit = [e for e in query_audit(store / "audit") if e.get("path") == "/ui/lists.xlsx"]
    assert audit[-1]["count"] == own.height and audit[-1]["action"] == "candidates"


# --- 覆盖率 and 运行 ----------------------------------------------------------------------------------------------


def test_coverage_dashboard_shows_every_county_with_suppression(analyst: TestClient, running: TestClient,
                                                                tokens: dict[str, str]) -> None:
    page = analyst.get("/ui/coverage")
    assert page.status_code == 200
    rows = api(running, tokens["analyst"], "/coverage", level="county")
    assert rows
    for row in rows:
        assert row["area_code"] in page.text and row["area_name"] in page.text
    assert "<svg" in page.text and 'id="county-chart-t"' in page.text and "全国参考值" in page.text
    assert any(r["suppressed"] for r in rows) and "&lt;5" in page.text
    shown = [r for r in rows if r["measure"] == "rural_dibao_coverage" and r["rate"] is not None]
    for row in shown:
        assert f"{row['rate'] * 100:.1f}%" in page.text
    drilled = analyst.get("/ui/coverage", params={"area": rows[0]["area_code"][:4] + "00"})
    assert drilled.status_code == 200 and rows[0]["area_name"] in drilled.text


def test_coverage_downloads(analyst: TestClient, running: TestClient, tokens: dict[str, str]) -> None:
    png = analyst.get("/ui/coverage.png", params={"measure": "rural_dibao_coverage"})
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n") and len(png.content) > 5000
    book = analyst.get("/ui/coverage.xlsx")
    assert book.status_code == 200
    frame = pl.read_excel(io.BytesIO(book.content), sheet_name="覆盖率")
    rows = api(running, tokens["analyst"], "/coverage")
    assert frame.height == len(rows)
    withheld = {(r["area_code"], r["label"]) for r in rows if r["numerator"] is None}
    got = frame.filter(pl.col("分子").is_null()).select("区划代码", "指标").rows()
    assert withheld <= set(got)


def test_runs_page_counts_for_everyone_items_for_caseworkers(analyst: TestClient, cw: TestClient,
                                                             store: Path) -> None:
    page = analyst.get("/ui/runs")
    assert all(d.isoformat() in page.text for d in DATES)
    assert "统计分析人员只能查看上表中的汇总数" in page.text
    diff = pl.read_parquet(store / "runs" / DATES[-1].isoformat() / "diff.parquet")
    mine = cw.get("/ui/runs")
    own = diff.filter(pl.col("county_code") == OWN)
    assert total_of(mine.text) == own.height
    others = diff.filter(pl.col("county_code") != OWN)["subject_id"].to_list()
    assert not any(f">{s}<" in mine.text for s in others)


# --- headers, accessibility, throttling --------------------------------------------------------------------------


def test_pages_carry_a_strict_csp_and_the_security_headers(cw: TestClient) -> None:
    for path in ("/ui/", "/ui/lists", "/ui/coverage", "/ui/runs", "/ui/households", "/ui/nope"):
        answer = cw.get(path)
        csp = answer.headers["content-security-policy"]
        assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-type"].startswith("text/html")


def test_every_page_passes_the_accessibility_check(app: FastAPI, cw: TestClient, analyst: TestClient,
                                                   store: Path) -> None:
    pages = [TestClient(app).get("/ui/login"), cw.get("/ui/"), cw.get("/ui/households"),
             cw.get("/ui/households", params={"q": flagged_household(store)}), cw.get("/ui/lists?type=exit"),
             cw.get("/ui/lists?type=flag"), cw.get("/ui/runs"), analyst.get("/ui/coverage"),
             analyst.get("/ui/households")]
    for page in pages:
        assert accessibility_problems(page.text) == [], page.url


def test_page_lookups_draw_on_the_same_throttle(store: Path, tokens: dict[str, str], tmp_path: Path) -> None:
    tight = limits_from({"lookup_misses": {"caseworker": {"rate": "1/h", "burst": 2}}})
    app = create_app(store, store / "tokens.yaml", limits=tight, throttle_state=tmp_path / "throttle.sqlite3")
    with TestClient(app):
        client = login(app, tokens["cw"])
        statuses = [client.get("/ui/households", params={"q": f"DB34040299990{n}"}).status_code for n in range(4)]
        assert statuses[:2] == [404, 404] and statuses[2] == 429
        refused = client.get("/ui/households", params={"q": flagged_household(store)})
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        assert refused.headers["content-type"].startswith("text/html") and "查询" in refused.text
        assert client.get("/ui/lists").status_code == 200  # only lookups are refused


def test_demo_access_prints_the_pages_address_and_a_token_that_logs_in(drop: Callable[..., Path],
                                                                       tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dibao.cli import app as cli

    store = tmp_path / "store"
    run_daily(drop(), DATES[-1], RunStore(store))
    out = CliRunner().invoke(cli, ["demo-access", "--store", str(store), "--port", "8123"])
    assert out.exit_code == 0, out.output
    assert "open http://127.0.0.1:8123/ui/ in a browser" in out.output
    pages = out.output[out.output.index("=== the web pages"):]
    token = re.search(r"caseworker of county [0-9]{6}: (\S+)", pages)
    assert token is not None
    demo = create_app(store, store / "tokens.yaml", limits=UNTHROTTLED)
    with TestClient(demo):
        client = login(demo, token.group(1))
        assert "户查询" in client.get("/ui/").text


def test_a_household_outside_the_callers_counties_renders_without_personal_data() -> None:
    """The 户查询 page shows another county's household of the family as the API does: county and lists only."""
    from dibao.serve.pages.render import render_html

    outside = {"in_scope": False, "source_label": "低保", "kind_label": "低保/特困在保户", "county_code": "340421",
               "county_name": "凤台县", "list_labels": ["应退尽退"], "household_id": None, "decisions": [],
               "members": [], "history": [], "facts": []}
    html = render_html("household.html", {"result": {"run": "2026-11-20", "matched_by": "id_number",
                                                     "households": [outside]}, "csrf": "x", "q": "", "nav": []})
    assert "凤台县" in html and "应退尽退" in html and "辖区外" in html
    assert "None" not in html and "户主" not in html and "成员与关联依据" not in html
