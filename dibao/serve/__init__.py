"""The dibao HTTP API: caseworkers look up one household, analysts read coverage statistics.

It reads published runs (``STORE/runs/YYYY-MM-DD/``) and never writes them. Entry points:
``dibao.serve.app.create_app`` (the FastAPI application), ``dibao.serve.server.serve`` (uvicorn; also
``python -m dibao.serve`` and ``dibao serve``), ``dibao.serve.tokens.add_token`` (bearer tokens; only their SHA-256
is stored) and ``dibao.serve.audit`` (the hash-chained audit log). Endpoints and details: ``README.md`` here.

Modules: ``app`` (wiring), ``routers/`` (service, households, lists, runs, statistics), ``problems`` (errors),
``auth`` (tokens per request, audit entries), ``tokens``, ``audit``, ``masking`` (masked views), ``models``
(response schemas), ``snapshot`` (a run in memory) and ``watcher`` (switching to newer runs), ``deps``.
"""
