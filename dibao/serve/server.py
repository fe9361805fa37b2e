"""Run the API under uvicorn: ``serve(store)``, or ``python -m dibao.serve --store STORE`` (``dibao serve``).

The uvicorn access log is off: request paths carry ID numbers, and who read what is recorded, with its result,
in the audit log instead. With ``workers`` > 1 each worker process loads its own snapshot of the run (memory ×
workers) and all of them append to the same audit log (serialised by a file lock); use one worker per core.

On a small machine set ``POLARS_MAX_THREADS=1`` in the service's environment (it must be set before Polars is
imported): a request only slices small frames, and idle pool threads cost CPU (about 25 % per request measured
on 2 cores). Worker processes get it by default.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from dibao.serve.app import create_app
from dibao.serve.limits import load_limits
from dibao.serve.serve_options import ENV_LIMITS, limits_path, transport_options

_ENV_STORE, _ENV_TOKENS, _ENV_AUDIT = "DIBAO_API_STORE", "DIBAO_API_TOKENS", "DIBAO_API_AUDIT"
# Request size limits applied while a request is read, malformed requests answered as problem+json.
HTTP_PROTOCOL = "dibao.serve.http_protocol:LimitedHttpToolsProtocol"


def app_from_environment() -> FastAPI:
    """The application for uvicorn worker processes (``--factory``), configured by environment variables."""
    store = Path(os.environ[_ENV_STORE])
    tokens = Path(os.environ.get(_ENV_TOKENS) or store / "tokens.yaml")
    audit = os.environ.get(_ENV_AUDIT)
    limits = os.environ.get(ENV_LIMITS)
    return create_app(store, tokens, Path(audit) if audit else None,
                      limits=load_limits(Path(limits) if limits else None))


def serve(store: Path, host: str = "127.0.0.1", port: int = 8000, tokens_file: Path | None = None, *,
          audit_dir: Path | None = None, workers: int = 1, log_level: str = "info", limits_file: Path | None = None,
          tls_cert: Path | None = None, tls_key: Path | None = None, forwarded_allow_ips: str | None = None) -> None:
    """Serve the API over ``store`` until interrupted (tokens default to ``store/tokens.yaml``). Limits, HTTPS and
    proxy headers: ``serve_options``."""
    tokens = tokens_file if tokens_file is not None else store / "tokens.yaml"
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, "access_log": False,
                               "server_header": False, "http": HTTP_PROTOCOL,
                               **transport_options(tls_cert, tls_key, forwarded_allow_ips)}
    limits_at = limits_path(store, limits_file)
    limits = load_limits(limits_at)  # checked here, before any worker starts
    if workers <= 1:
        uvicorn.run(create_app(store, tokens, audit_dir, limits=limits), **options)
        return
    if limits_at is not None:
        os.environ[ENV_LIMITS] = str(limits_at.resolve())
    # Worker processes are spawned (fresh interpreters): a one-thread Polars pool there, since requests only slice
    # small frames and idle pool threads spinning cost CPU on small machines. Set before they import Polars.
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    os.environ[_ENV_STORE] = str(store.resolve())
    os.environ[_ENV_TOKENS] = str(tokens.resolve())
    if audit_dir is not None:
        os.environ[_ENV_AUDIT] = str(audit_dir.resolve())
    # A worker loads its snapshot before it reports ready: give it longer than uvicorn's default 5 s.
    uvicorn.run("dibao.serve.server:app_from_environment", factory=True, workers=workers,
                timeout_worker_healthcheck=120, **options)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dibao.serve", description="Serve the dibao API.")
    parser.add_argument("--store", type=Path, default=Path("store"), help="run store folder (default: store)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--tokens", type=Path, default=None, help="tokens file (default: STORE/tokens.yaml)")
    parser.add_argument("--audit-dir", type=Path, default=None, help="audit log folder (default: STORE/audit)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--limits", type=Path, default=None,
                        help=f"throttling limits, YAML (default: ${ENV_LIMITS}, else STORE/limits.yaml if present)")
    parser.add_argument("--tls-cert", type=Path, default=None, help="serve HTTPS: PEM certificate (with --tls-key)")
    parser.add_argument("--tls-key", type=Path, default=None, help="serve HTTPS: PEM private key")
    parser.add_argument("--forwarded-allow-ips", default=None,
                        help="reverse proxies trusted to name the client in X-Forwarded-For (default: none)")
    args = parser.parse_args(argv)
    serve(args.store, args.host, args.port, args.tokens, audit_dir=args.audit_dir, workers=args.workers,
          limits_file=args.limits, tls_cert=args.tls_cert, tls_key=args.tls_key,
          forwarded_allow_ips=args.forwarded_allow_ips)


if __name__ == "__main__":
    main()
