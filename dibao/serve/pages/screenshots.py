"""Screenshots of every page for the README: ``python -m dibao.serve.pages.screenshots [--out docs/screenshots]``.

Builds a store of two runs of the bundled samples (or uses ``--store``), starts ``dibao serve`` on a free loopback
port, logs in with demo tokens in headless Chromium — the system's browser (Debian's ``chromium``, or
``DIBAO_CHROMIUM``), driven by Playwright; no browser is downloaded — and saves one PNG per page. The browser tests
(tests/test_pages_browser.py) use the same server and browser helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "data" / "samples" / "drop"
DATES = (dt.date(2026, 11, 20), dt.date(2026, 11, 21))  # as `make demo`: the samples, then the next day
ENV_CHROMIUM = "DIBAO_CHROMIUM"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
WIDTH, HEIGHT = 1280, 800  # the viewport: a common office screen


def chromium_path() -> str | None:
    """The system's Chromium: ``DIBAO_CHROMIUM``, else Debian's ``/usr/bin/chromium`` and its usual names."""
    configured = os.environ.get(ENV_CHROMIUM, "").strip()
    for candidate in ([configured] if configured else []) + list(CHROMIUM_CANDIDATES):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def build_store(store: Path, dates: Sequence[dt.date] = DATES) -> Path:
    """A store of the sample drop's run on ``dates[0]`` and the generated next day's on ``dates[1]`` (what
    ``make demo`` runs: a death, an income rise, a new monitored household), so the pages have a trend and
    changes to show."""
    from dibao.pipeline import run_daily
    from dibao.publish.store import RunStore
    from dibao_synth.nextday.drop import next_day

    drop = SAMPLES
    for n, date in enumerate(dates):
        if n:
            following = store.parent / f"drop-{date.isoformat()}"
            if not following.is_dir():
                next_day(drop, following, seed=n, date=date)
            drop = following
        if not (store / "runs" / date.isoformat()).is_dir():
            run_daily(drop, date, RunStore(store))
    return store


def demo_tokens(store: Path, county: str = "340402") -> dict[str, str]:
    """Fresh tokens of each role (replacing earlier ones of the same names)."""
    from dibao.serve.tokens import add_token, revoke_token

    book = store / "tokens.yaml"
    tokens = {}
    for key, name, role, counties in (("caseworker", "大通区-张经办", "caseworker", [county]),
                                      ("analyst", "省厅-李分析", "analyst", []), ("admin", "省厅-管理员", "admin", [])):
        revoke_token(book, name)
        tokens[key] = add_token(book, name, role, counties)
    return tokens


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(store: Path, log_file: Path, *, timeout: float = 90.0) -> Iterator[str]:
    """``dibao serve`` over ``store`` on a free loopback port until the block ends; yields its base URL."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_file.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "dibao.serve", "--store", str(store), "--host",
                                    "127.0.0.1", "--port", str(port)], cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"dibao serve exited: {log_file.read_text(errors='replace')[-2000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dibao serve did not answer within {timeout:.0f} s")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def log_in(page: Any, base: str, token: str) -> None:
    """Through the log-in form, as a person would."""
    page.goto(f"{base}/ui/login")
    page.get_by_label("访问令牌").fill(token)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{base}/ui/")


def take(store: Path, out: Path, log_file: Path) -> list[Path]:
    """One screenshot per page, as each role sees it."""
    import polars as pl
    from playwright.sync_api import ViewportSize, sync_playwright

    from dibao.publish.contract import LIST_FILES

    executable = chromium_path()
    if executable is None:
        raise SystemExit("no Chromium found: install Debian's chromium (apt-get install chromium fonts-noto-cjk) "
                         f"or set {ENV_CHROMIUM}")
    tokens = demo_tokens(store)
    viewport = ViewportSize(width=WIDTH, height=HEIGHT)
    run = sorted((store / "runs").iterdir())[-1]
    exits = pl.read_parquet(run / LIST_FILES["exit"].filename).filter(pl.col("county_code") == "340402")
    household = str(exits.sort("subject_id")["subject_id"][0])
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with running_server(store, log_file) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport=viewport, locale="zh-CN", device_scale_factor=1)
            page = context.new_page()
            page.goto(f"{base}/ui/login")
            shots.append(_shot(page, out / "login.png"))
            log_in(page, base, tokens["caseworker"])
            shots.append(_shot(page, out / "home.png"))
            page.get_by_label("证件号码或家庭编号").fill(household)
            page.get_by_role("button", name="查询").click()
            page.wait_for_load_state()
            shots.append(_shot(page, out / "household.png"))
            page.goto(f"{base}/ui/lists?type=exit")
            shots.append(_shot(page, out / "lists.png"))
            page.goto(f"{base}/ui/runs")
            shots.append(_shot(page, out / "runs.png"))
            context.close()
            context = browser.new_context(viewport=viewport, locale="zh-CN", device_scale_factor=1)
            page = context.new_page()
            log_in(page, base, tokens["analyst"])
            page.goto(f"{base}/ui/coverage")
            shots.append(_shot(page, out / "coverage.png"))
            context.close()
        finally:
            browser.close()
    return shots


def _shot(page: Any, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--store", type=Path, default=None, help="a store to show (default: two sample runs)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dibao-shots-") as folder:
        store = args.store or build_store(Path(folder) / "store")
        for path in take(store, args.out, Path(folder) / "server.log"):
            print(path)


if __name__ == "__main__":
    main()
