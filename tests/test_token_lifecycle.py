"""Issue 13 item 8, tokens: they never expired; a malformed tokens file silently kept serving the tokens read
before it (revoked ones included); ``token add --county 999999`` was accepted. Now: expiry (default 90 days),
``dibao token list``, county codes checked against the store's latest run, and a broken file refuses every token.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dibao.cli import app as cli
from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from dibao.serve.app import create_app
from dibao.serve.audit import query_audit
from dibao.serve.tokens import (
    DEFAULT_LIFETIME,
    Principal,
    Refusal,
    TokenBook,
    TokenFileError,
    add_token,
    list_tokens,
    load_tokens,
    parse_expiry,
    revoke_token,
)

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "samples" / "drop"
DATE = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tokens") / "store"
    run_daily(SAMPLE, DATE, RunStore(root))
    return root


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- expiry ----------------------------------------------------------------------------------------------------


def test_expiry_is_written_as_a_duration_a_date_or_never() -> None:
    assert parse_expiry("90d", NOW) == NOW + dt.timedelta(days=90)
    assert parse_expiry("12h", NOW) == NOW + dt.timedelta(hours=12)
    assert parse_expiry(" 2w ", NOW) == NOW + dt.timedelta(weeks=2)
    assert parse_expiry("never", NOW) is None
    through = parse_expiry("2027-03-01", NOW)
    assert through is not None and through.astimezone().date() == dt.date(2027, 3, 2)  # valid all of 1 March
    assert through.astimezone().time() == dt.time()
    assert parse_expiry("2027-03-01T12:00+08:00", NOW) == dt.datetime(2027, 3, 1, 4, 0, tzinfo=dt.UTC)
    for bad in ("soon", "90", "2027-02-30", "-5d"):
        with pytest.raises(TokenFileError, match="not understood"):
            parse_expiry(bad, NOW)
    with pytest.raises(TokenFileError, match="already past"):
        parse_expiry("2026-11-20", NOW)


def test_a_new_token_expires_after_90_days_by_default(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    before = dt.datetime.now(dt.UTC)
    add_token(tokens_file, "分析", "analyst", [])
    (who,) = load_tokens(tokens_file).values()
    assert who.expires is not None
    assert before + DEFAULT_LIFETIME - dt.timedelta(seconds=5) <= who.expires <= before + DEFAULT_LIFETIME \
        + dt.timedelta(seconds=5)
    add_token(tokens_file, "长期", "analyst", [], lifetime=None)
    assert {p.name: p.expires for p in load_tokens(tokens_file).values()}["长期"] is None


def test_an_expired_token_is_refused_at_the_moment_it_expires(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    token = add_token(tokens_file, "经办", "caseworker", ["340402"], expires=NOW)
    book = TokenBook(tokens_file)
    assert isinstance(book.identify(token, NOW - dt.timedelta(seconds=1)), Principal)
    refused = book.identify(token, NOW)
    assert isinstance(refused, Refusal) and refused.reason == "expired" and refused.who is not None
    assert refused.who.name == "经办"


def test_entries_without_expiry_from_older_files_keep_working(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    token = add_token(tokens_file, "旧令牌", "admin", [])
    doc = yaml.safe_load(tokens_file.read_text(encoding="utf-8"))
    del doc["tokens"][0]["expires"]
    tokens_file.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    found = TokenBook(tokens_file).identify(token, NOW + dt.timedelta(days=3650))
    assert isinstance(found, Principal) and found.expires is None


def test_expired_token_gets_401_saying_it_expired_and_is_audited(store: Path, tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    expired = add_token(tokens_file, "过期的经办", "caseworker", ["340402"], expires=past)
    with TestClient(create_app(store, tokens_file, tmp_path / "audit")) as client:
        for path in ("/counts", "/candidates"):
            response = client.get(path, headers=auth(expired))
            assert response.status_code == 401, response.text
            assert response.headers["content-type"] == "application/problem+json"
            body = response.json()
            assert "已于" in body["detail"] and "过期" in body["detail"] and "expired" in body["detail"]
            assert body["type"] == "urn:dibao:problem:token-expired"
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
    (entry,) = query_audit(tmp_path / "audit", action="candidates")
    assert entry["user"] == "过期的经办" and entry["status"] == 401


# --- a broken tokens file fails closed ------------------------------------------------------------------------


BROKEN_EDITS = {
    "not YAML": "tokens: [ {name: x\n",
    "no list": "tokens: yes\n",
    "unknown role": None,  # filled in by the test: a valid file with one role misspelt
    "bad county": None,
    "bad expiry": None,
}


def _broken_text(tokens_file: Path, kind: str) -> str:
    text = BROKEN_EDITS[kind]
    if text is not None:
        return text
    doc = yaml.safe_load(tokens_file.read_text(encoding="utf-8"))
    entry = doc["tokens"][-1]
    if kind == "unknown role":
        entry["role"] = "superuser"
    elif kind == "bad county":
        entry["counties"] = ["3404"]
    else:
        entry["expires"] = "next tuesday"
    return yaml.safe_dump(doc, allow_unicode=True)


@pytest.mark.parametrize("kind", list(BROKEN_EDITS))
def test_a_broken_tokens_file_refuses_every_token_not_the_old_ones(tmp_path: Path, kind: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """The finding: a revoked token kept working while the file did not parse. Now nobody gets in until it is
    fixed, and the log says why."""
    tokens_file = tmp_path / "tokens.yaml"
    kept = add_token(tokens_file, "留用", "admin", [])
    revoked = add_token(tokens_file, "已撤销", "caseworker", ["340402"])
    book = TokenBook(tokens_file, recheck_seconds=0)
    assert isinstance(book.identify(revoked), Principal)
    revoke_token(tokens_file, "已撤销")
    with caplog.at_level(logging.ERROR, logger="dibao.api"):
        tokens_file.write_text(_broken_text(tokens_file, kind), encoding="utf-8")
        for token in (kept, revoked):
            found = book.identify(token)
            assert isinstance(found, Refusal) and found.reason == "tokens_file_broken", kind
        assert book.verify(kept) is None
    assert any("tokens file" in r.getMessage() and "broken" in r.getMessage() for r in caplog.records)
    assert len([r for r in caplog.records if "broken" in r.getMessage()]) == 1, "logged once, not per request"
    revoke_token_file = tokens_file.with_name("fixed.yaml")
    good = add_token(revoke_token_file, "修好", "admin", [])
    revoke_token_file.replace(tokens_file)  # the file is fixed (here: replaced by a good one)
    assert isinstance(book.identify(good), Principal)
    assert isinstance(book.identify(revoked), Refusal)


def test_a_broken_tokens_file_answers_503_problem_json(store: Path, tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    admin = add_token(tokens_file, "管理员", "admin", [])
    app = create_app(store, tokens_file, tmp_path / "audit")
    app.state.tokens.recheck_seconds = 0
    with TestClient(app) as client:
        assert client.get("/runs", headers=auth(admin)).status_code == 200
        tokens_file.write_text("tokens: [ {name: x\n", encoding="utf-8")
        for path in ("/runs", "/counts", "/candidates", "/households/DB340402000001"):
            for headers in (auth(admin), {}):
                response = client.get(path, headers=headers)
                assert response.status_code == 503, (path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                detail = response.json()["detail"]
                assert "令牌文件损坏" in detail and "tokens file is broken" in detail
                assert "tokens: [" not in response.text  # the file's content is never echoed
        assert client.get("/health").status_code == 200


# --- county codes and the command line ------------------------------------------------------------------------


def test_token_add_refuses_a_county_the_store_does_not_have(store: Path) -> None:
    out = runner.invoke(cli, ["token", "add", "误填", "--role", "caseworker", "--county", "999999",
                              "--store", str(store)])
    assert out.exit_code == 1, out.output
    assert "999999 不是本库的县" in out.output and "county 999999 is not a county of this store" in out.output
    assert "误填" not in (store / "tokens.yaml").read_text(encoding="utf-8") if (store / "tokens.yaml").exists() \
        else True
    ok = runner.invoke(cli, ["token", "add", "凤台县-经办", "--role", "caseworker", "--county", "340421",
                             "--store", str(store)])
    assert ok.exit_code == 0, ok.output
    joining = runner.invoke(cli, ["token", "add", "新县-经办", "--role", "caseworker", "--county", "999999",
                                  "--allow-unknown-county", "--store", str(store)])
    assert joining.exit_code == 0, joining.output


def test_token_add_on_a_store_without_runs_needs_the_explicit_flag(tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = runner.invoke(cli, ["token", "add", "x", "--role", "caseworker", "--county", "340402", "--store",
                              str(store)])
    assert out.exit_code == 1 and "no published run" in out.output and "尚无已发布的运行" in out.output
    analyst = runner.invoke(cli, ["token", "add", "y", "--role", "analyst", "--store", str(store)])
    assert analyst.exit_code == 0, analyst.output  # no county to check


def test_token_add_expiry_option(tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = runner.invoke(cli, ["token", "add", "短期", "--role", "admin", "--expires", "7d", "--store", str(store)])
    assert out.exit_code == 0 and "expires" in out.output
    (info,) = list_tokens(store / "tokens.yaml")
    assert info.expires is not None
    assert dt.timedelta(days=6, hours=23) < info.expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=7)
    bad = runner.invoke(cli, ["token", "add", "z", "--role", "admin", "--expires", "tomorrow", "--store",
                              str(store)])
    assert bad.exit_code == 1 and "not understood" in bad.output


@pytest.fixture
def listed(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    store = tmp_path / "store"
    secrets = {"cw": add_token(store / "tokens.yaml", "大通区-经办", "caseworker", ["340402", "340403"]),
               "forever": add_token(store / "tokens.yaml", "省厅-分析", "analyst", [], lifetime=None),
               "old": add_token(store / "tokens.yaml", "过期管理员", "admin", [],
                                expires=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))}
    yield store, secrets


def test_token_list_shows_who_and_until_when_never_the_secret(listed: tuple[Path, dict[str, str]]) -> None:
    store, secrets = listed
    out = runner.invoke(cli, ["token", "list", "--store", str(store)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    for text in ("大通区-经办", "caseworker", "340402, 340403", "省厅-分析", "never", "过期管理员", "2020-01-01",
                 "(expired)"):
        assert text in out.output, text
    stored = yaml.safe_load((store / "tokens.yaml").read_text(encoding="utf-8"))["tokens"]
    for secret in secrets.values():
        assert secret not in out.output
    for entry in stored:
        assert entry["sha256"] not in out.output


def test_token_list_of_a_broken_file_says_the_server_refuses_it(listed: tuple[Path, dict[str, str]]) -> None:
    store, _ = listed
    (store / "tokens.yaml").write_text("tokens: [ {name: x\n", encoding="utf-8")
    out = runner.invoke(cli, ["token", "list", "--store", str(store)])
    assert out.exit_code == 1 and "refuses every token" in out.output
