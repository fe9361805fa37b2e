"""``python -m dibao.serve --store STORE [--port 8000] [--workers 2]``."""

from dibao.serve.server import main

main()
