"""The web pages in a real browser: headless Chromium (the system's, Debian's ``chromium``; Playwright drives it, no
browser is downloaded) against ``dibao serve`` on loopback, doing what a caseworker and an analyst do.

Skipped, saying why, only when no Chromium binary exists (``DIBAO_CHROMIUM`` or /usr/bin/chromium) or the
``playwright`` package is missing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from dibao.publish.contract import LIST_LABELS
from dibao.serve.pages.screenshots import build_store, chromium_path, demo_tokens, log_in, running_server

CHROMIUM = chromium_path()
try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the dev requirements install it
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary: apt-get install chromium fonts-noto-cjk "
                                                "(or set DIBAO_CHROMIUM to one)"),
    pytest.mark.skipif(sync_playwright is None, reason="the playwright package is not installed (dev requirements)"),
]
OWN = "340402"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("pages-browser")
    store = build_store(root / "store")
    tokens = demo_tokens(store, OWN)
    with running_server(store, root / "server.log") as base:
        yield base, store, tokens


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN", accept_downloads=True, viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def latest(store: Path) -> Path:
    return sorted((store / "runs").iterdir())[-1]


def focused(page: Page) -> str:
    """What has the keyboard focus, as a person would name it."""
    result: str = page.evaluate(
        "() => { const e = document.activeElement; return (e.id ? '#' + e.id : '') + ' ' + "
        "(e.getAttribute('aria-label') || e.textContent || e.value || '').trim().slice(0, 20); }")
    return result.strip()


def test_caseworker_finds_a_flagged_household_and_works_the_list(site: tuple[str, Path, dict[str, str]],
                                                                  page: Page, tmp_path: Path) -> None:
    base, store, tokens = site
    exits = pl.read_parquet(latest(store) / "exit_candidates.parquet")
    mine = exits.filter(pl.col("county_code") == OWN).sort("subject_id")
    household = mine.row(0, named=True)

    page.goto(base + "/")  # → /ui/ → the log-in page
    expect(page).to_have_url(re.compile(r"/ui/login"))
    log_in(page, base, tokens["caseworker"])

    # the tab order: skip link first, then the menu, log-out, then the search field and its button
    order = []
    for _ in range(10):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert order[0].endswith("跳到正文")
    assert order.index("#q") < next(i for i, f in enumerate(order) if f.endswith("查询") and i > order.index("#q"))
    assert [f for f in order if "退出登录" in f] and order.index("#q") > order.index(
        next(f for f in order if "退出登录" in f))

    page.get_by_label("证件号码或家庭编号").fill(household["subject_id"])
    page.keyboard.press("Enter")
    main = page.locator("main")
    for label in household["reason_labels"]:
        expect(main).to_contain_text(label)
    expect(main).to_contain_text(household["detail"].split("：")[0])
    expect(main).to_contain_text("本户数据")
    assert household["subject_id"] not in page.url  # the typed number stays out of the address bar

    # another county's household answers exactly as a number nobody knows
    other = str(exits.filter(pl.col("county_code") != OWN)["subject_id"][0])
    unknown = other[:-3] + "999"
    texts = []
    for query in (other, unknown):
        page.get_by_label("证件号码或家庭编号").fill(query)
        page.get_by_role("button", name="查询").click()
        page.wait_for_load_state()
        texts.append(page.locator("main").inner_text().replace(query, "QUERY"))
        assert page.get_by_label("证件号码或家庭编号").input_value() == query
    assert texts[0] == texts[1] and "未找到" in texts[0]

    # the work list, its download, and a row's link to its household
    page.get_by_role("link", name="工作清单").first.click()
    expect(page.locator("table.list")).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("下载 XLSX")).click()
    saved = tmp_path / "list.xlsx"
    info.value.save_as(saved)
    sheet = pl.read_excel(saved, sheet_name=LIST_LABELS["exit"])
    assert sheet.height == mine.height and set(sheet["低保家庭编号"].to_list()) == set(mine["subject_id"].to_list())
    page.get_by_role("link", name=household["subject_id"]).click()
    expect(page.locator("main")).to_contain_text(household["reason_labels"][0])

    # log out: the pages need a log-in again
    page.get_by_role("button", name="退出登录").click()
    expect(page.locator("main")).to_contain_text("已退出登录")
    page.goto(base + "/ui/lists")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))


def test_analyst_sees_every_county_and_the_chart_but_no_personal_data(site: tuple[str, Path, dict[str, str]],
                                                                       page: Page) -> None:
    base, store, tokens = site
    log_in(page, base, tokens["analyst"])
    expect(page.get_by_role("link", name="户查询")).to_have_count(0)  # not offered
    page.goto(base + "/ui/coverage")
    coverage = pl.read_parquet(latest(store) / "coverage.parquet").filter(pl.col("level") == "county")
    table = page.get_by_role("table", name="各县区各项指标与全国参考值")
    for name in coverage["area_name"].unique().to_list():
        expect(table).to_contain_text(name)
    chart = page.locator("#county-chart")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 200
    assert chart.locator("rect").count() > 2 and chart.locator("line[stroke-dasharray]").count() == 1
    expect(page.locator("#county-chart-t")).to_have_count(1)
    expect(page.locator("#trend-chart")).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("link", name="下载图表 PNG").click()
    assert Path(info.value.path()).read_bytes().startswith(b"\x89PNG")
    # drill down: province → city
    page.get_by_role("link", name="安徽省").click()
    expect(page.get_by_role("navigation", name="区域层级")).to_contain_text("安徽省")
    for path in ("/ui/households?q=DB340402000002", "/ui/lists"):
        answer = page.goto(base + path)
        assert answer is not None and answer.status == 403
        expect(page.locator("main")).to_contain_text("统计分析人员只能查看汇总统计")


def test_forms_refuse_a_request_without_their_csrf_token(site: tuple[str, Path, dict[str, str]],
                                                         page: Page) -> None:
    base, _, tokens = site
    log_in(page, base, tokens["caseworker"])
    forged: Any = page.request.post(base + "/ui/households", form={"q": "DB340402000002", "csrf": "forged"})
    assert forged.status == 403 and "表单已失效" in forged.text()
    no_token: Any = page.request.post(base + "/ui/logout", form={"csrf": ""})
    assert no_token.status == 403
    page.goto(base + "/ui/")
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()  # still logged in


def test_no_request_leaves_the_server(site: tuple[str, Path, dict[str, str]], page: Page) -> None:
    base, _, tokens = site
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(re.sub(r"^(\w+://[^/]+).*", r"\1", request.url)))
    log_in(page, base, tokens["admin"])
    for path in ("/ui/", "/ui/lists?type=flag", "/ui/coverage", "/ui/runs", "/ui/households?q=DB340402000002"):
        page.goto(base + path)
    assert hosts == {base}
