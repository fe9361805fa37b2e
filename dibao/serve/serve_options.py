"""What ``dibao serve`` adds to uvicorn for issue 13: the limits file, HTTPS, and which proxy may name the client.

- Limits (``dibao/serve/limits.py``): ``--limits FILE``, else ``$DIBAO_API_LIMITS``, else ``STORE/limits.yaml`` when
  it exists, else the documented defaults. Read and checked before the server starts; worker processes get the
  path in ``DIBAO_API_LIMITS``.
- HTTPS: ``--tls-cert CERT.pem --tls-key KEY.pem`` (both or neither) → uvicorn's ``ssl_certfile``/``ssl_keyfile``.
- Behind a reverse proxy every client has the proxy's address, so per-address limits would lump all clients
  together. ``--forwarded-allow-ips 10.0.0.5`` (comma-separated addresses or networks, as uvicorn takes them) trusts
  ``X-Forwarded-For`` from those peers only; by default it is trusted from nobody (uvicorn would trust loopback),
  so no client can choose its own address for the limits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dibao.errors import ConfigError

ENV_LIMITS = "DIBAO_API_LIMITS"
LIMITS_FILE = "limits.yaml"


def limits_path(store: Path, explicit: Path | None) -> Path | None:
    """The limits file in force (None: the defaults)."""
    if explicit is not None:
        return explicit
    if os.environ.get(ENV_LIMITS):
        return Path(os.environ[ENV_LIMITS])
    beside = store / LIMITS_FILE
    return beside if beside.is_file() else None


def transport_options(tls_cert: Path | None, tls_key: Path | None, forwarded_allow_ips: str | None) -> dict[str, Any]:
    """uvicorn keyword arguments for HTTPS and for proxy headers."""
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together: give both (PEM certificate and its private key)")
    options: dict[str, Any] = {"proxy_headers": forwarded_allow_ips is not None}
    if forwarded_allow_ips is not None:
        options["forwarded_allow_ips"] = forwarded_allow_ips
    if tls_cert is not None and tls_key is not None:
        for label, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
            if not path.is_file():
                raise ConfigError(f"{label} {path}: no such file")
        options |= {"ssl_certfile": str(tls_cert), "ssl_keyfile": str(tls_key)}
    return options
