"""The dibao HTTP API: caseworkers look up one household, analysts read coverage statistics.

It reads published runs (``STORE/runs/YYYY-MM-DD/``) and never writes them. Entry points:
``api.app.create_app`` (the FastAPI application), ``api.serve.serve`` (uvicorn), ``api.tokens.add_token``
(bearer tokens; only their SHA-256 is stored) and ``api.audit`` (the hash-chained audit log).
"""
