"""Issue 13 items 4 and 5 at the HTTP-server level: ``dibao serve`` on loopback, called with httpx.

- HTTPS with ``--tls-cert/--tls-key`` (a self-signed certificate made here with the openssl CLI);
- with ``--workers 2`` the limits hold across worker processes (new connection per request, so the kernel hands
  them to either worker): random tokens meet the lockout, a caseworker's enumeration meets 429 after 20 misses;
- ``X-Forwarded-For`` is ignored unless ``--forwarded-allow-ips`` names the proxy; ``--limits FILE`` is read.

Clients take different loopback source addresses (127.0.0.2, 127.0.0.3…) to be different clients.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl
import pytest
import yaml

from dibao.normalise.ids import expected_check_char
from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from dibao.serve.tokens import add_token
from tests.real_server import free_port, serving

ROOT = Path(__file__).resolve().parent.parent
DATE = dt.date(2026, 11, 20)
OWN = "340402"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    store = tmp_path_factory.mktemp("serve-options") / "store"
    run_daily(ROOT / "data" / "samples" / "drop", DATE, RunStore(store))
    tokens = {"admin": add_token(store / "tokens.yaml", "admin", "admin", []),
              "cw": add_token(store / "tokens.yaml", "cw", "caseworker", [OWN])}
    return store, tokens


def fresh_store(base: Path, folder: Path) -> Path:
    """A copy with no throttle state or audit log yet (each server starts from empty buckets)."""
    store = folder / "store"
    shutil.copytree(base, store, ignore=shutil.ignore_patterns("api", "audit"))
    return store


def client_from(source: str, base_url: str) -> httpx.Client:
    """A client whose connections come from loopback address ``source``, a new connection for every request."""
    transport = httpx.HTTPTransport(local_address=source, limits=httpx.Limits(max_keepalive_connections=0))
    return httpx.Client(base_url=base_url, transport=transport, timeout=10)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command-line tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed (and neither is the cryptography package)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def test_dibao_serve_over_https(base_store: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    base, tokens = base_store
    store = fresh_store(base, tmp_path)
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    command = [str(BIN / "dibao"), "serve", "--store", str(store), "--port", str(port),
               "--tls-cert", str(cert), "--tls-key", str(key)]
    with serving(command, tmp_path / "server.log", url, verify=trust):
        with httpx.Client(base_url=url, verify=trust, timeout=10) as client:
            health = client.get("/health")
            assert health.json() == {"status": "ok", "run": DATE.isoformat()}
            assert health.headers["strict-transport-security"] == "max-age=31536000"
            assert health.headers["cache-control"] == "no-store"
            person = own_id(store)
            found = client.post("/households/lookup", json={"id": person}, headers=auth(tokens["cw"]))
            assert found.status_code == 200 and found.json()["person_key"] == person
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the HTTPS port gets no answer
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        with pytest.raises(httpx.ConnectError):  # and a client that does not trust the certificate refuses it
            httpx.get(f"{url}/health", timeout=5)


def own_id(store: Path) -> str:
    facts = pl.read_parquet(store / "runs" / DATE.isoformat() / "household_facts.parquet")
    links = pl.read_parquet(store / "runs" / DATE.isoformat() / "person_links.parquet")
    own = links.filter(pl.col("household").is_in(facts.filter(pl.col("county_code") == OWN)["household_key"]
                                                  .implode()) & pl.col("person_key").str.contains(r"^[0-9]{17}[0-9X]$"))
    return str(own.sort("person_key")["person_key"][0])


def candidates_for(person: str, count: int) -> list[str]:
    """Check-digit-valid IDs with ``person``'s region, sequence and check digit, one birth date after another."""
    out: list[str] = []
    day = dt.date(1920, 1, 1)
    while len(out) < count:
        first17 = f"{person[:6]}{day:%Y%m%d}{person[14:17]}"
        if expected_check_char(first17) == person[17] and first17 + person[17] != person:
            out.append(first17 + person[17])
        day += dt.timedelta(days=1)
    return out


def test_limits_hold_across_two_worker_processes(base_store: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    base, tokens = base_store
    store = fresh_store(base, tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "dibao.serve", "--store", str(store), "--port", str(port), "--workers", "2"]
    with serving(command, tmp_path / "server.log", url):
        started = time.monotonic()
        with client_from("127.0.0.2", url) as guesser:
            statuses = []
            for n in range(2000):  # random tokens; X-Forwarded-For is not trusted without --forwarded-allow-ips
                statuses.append(guesser.get("/runs", headers={**auth(secrets.token_urlsafe(32)),
                                                              "X-Forwarded-For": f"198.51.100.{n % 250}"}).status_code)
                if statuses[-1] == 429:
                    break
            assert statuses == [401] * 6 + [429]
            assert int(guesser.get("/runs", headers=auth(tokens["admin"])).headers["retry-after"]) > 800

        with client_from("127.0.0.3", url) as caseworker:
            answered = []
            for candidate in candidates_for(own_id(store), 2000):
                response = caseworker.get(f"/households/{candidate}", headers=auth(tokens["cw"]))
                if response.status_code == 429:
                    assert response.json()["limit"] == "lookup_misses" and int(response.headers["retry-after"]) > 0
                    break
                answered.append(response.status_code)
            assert answered == [404] * 20  # the 21st request meets 429, whichever worker answers it
        assert time.monotonic() - started < 60
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert log.count("Started server process") >= 2, log


def test_forwarded_allow_ips_and_limits_file(base_store: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    base, tokens = base_store
    store = fresh_store(base, tmp_path)
    limits = tmp_path / "limits.yaml"
    limits.write_text(yaml.safe_dump({"failed_auth": {"burst": 2, "lockout_seconds": 120}}), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "dibao.serve", "--store", str(store), "--port", str(port),
               "--forwarded-allow-ips", "127.0.0.1", "--limits", str(limits)]
    with serving(command, tmp_path / "server.log", url):
        with client_from("127.0.0.1", url) as proxy:
            behind = {"X-Forwarded-For": "198.51.100.7"}
            statuses = [proxy.get("/runs", headers={**behind, **auth("guess")}).status_code for _ in range(4)]
            assert statuses == [401, 401, 401, 429]  # the file's burst of 2, then the lockout of 120 s
            locked = proxy.get("/runs", headers={**behind, **auth(tokens["admin"])})
            assert locked.status_code == 429 and int(locked.headers["retry-after"]) <= 120
            # Another client behind the same proxy is its own address.
            other = proxy.get("/runs", headers={"X-Forwarded-For": "198.51.100.8", **auth(tokens["admin"])})
            assert other.status_code == 200
        with client_from("127.0.0.4", url) as direct:  # not the proxy: its X-Forwarded-For is ignored
            spoofed = {"X-Forwarded-For": "198.51.100.9"}
            assert [direct.get("/runs", headers={**spoofed, **auth("x")}).status_code for _ in range(4)][-1] == 429
            assert direct.get("/runs", headers={"X-Forwarded-For": "198.51.100.10",
                                                **auth(tokens["admin"])}).status_code == 429


def test_bad_serve_options_are_refused_before_starting(base_store: tuple[Path, dict[str, str]],
                                                       tmp_path: Path) -> None:
    base, _ = base_store
    bad = tmp_path / "limits.yaml"
    bad.write_text("lookups: {caseworker: {rate: fast}}\n", encoding="utf-8")
    for extra, words in ((["--limits", str(bad)], "fast"), (["--tls-cert", str(bad)], "--tls-key")):
        result = subprocess.run([str(BIN / "dibao"), "serve", "--store", str(base), "--port", str(free_port()),
                                 *extra], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert result.returncode == 3 and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def started_at(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks after boot, from /proc), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` (Linux /proc/PID/task/TID/children), with its start time (a reused pid differs)."""
    found: dict[int, str] = {}
    parents = [pid]
    while parents:
        for task in Path(f"/proc/{parents.pop()}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                if child not in found and (started := started_at(child)) is not None:
                    found[child] = started
                    parents.append(child)
    return found


@pytest.mark.parametrize("supervisor", ["stops", "is_killed"])
def test_no_worker_process_outlives_the_server(base_store: tuple[Path, dict[str, str]], tmp_path: Path,
                                               supervisor: str) -> None:
    """``serving`` leaves none of uvicorn's workers behind, even when the supervisor dies without stopping them
    (what a bare ``process.kill()`` after the stop timeout did: two workers were still alive 45 minutes later)."""
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs Linux /proc/PID/task/TID/children to find the worker processes")
    base, _ = base_store
    store = fresh_store(base, tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "dibao.serve", "--store", str(store), "--port", str(port), "--workers", "2"]
    with serving(command, tmp_path / "server.log", url) as process:
        deadline = time.monotonic() + 30
        while len(workers := descendants(process.pid)) < 2:
            assert time.monotonic() < deadline, f"not two worker processes below the server: {workers}"
            time.sleep(0.2)
        if supervisor == "is_killed":
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            assert any(started_at(pid) == started for pid, started in workers.items()), "orphans to clean up"
    deadline = time.monotonic() + 5
    while alive := [pid for pid, started in workers.items() if started_at(pid) == started]:
        assert time.monotonic() < deadline, f"worker processes still alive after the server stopped: {alive}"
        time.sleep(0.1)
