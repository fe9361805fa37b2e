"""The /docs page (Swagger UI) served entirely by this server: no request to any other host.

FastAPI's default page loads its script and styles from a public CDN, which fails on an offline government
network and tells the CDN who opens it. The assets here come from the ``fastapi-offline`` package (pinned in
requirements.lock; its ``static/`` folder holds Swagger UI's ``swagger-ui-bundle.js`` and ``swagger-ui.css`` and a
favicon), served under ``/docs/assets/``. The page's one inline script is allowed by its SHA-256 in the page's
Content-Security-Policy; nothing else inline runs. ReDoc and the OAuth2 redirect page are not offered.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from dibao.serve.headers import page_csp
from dibao.serve.problems import NO_ENDPOINT_DETAIL, ApiProblem

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
# Swagger UI would otherwise show a badge fetched from validator.swagger.io.
SWAGGER_PARAMETERS = {"validatorUrl": None}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def asset_folder() -> Traversable:
    return files("fastapi_offline") / "static"


def docs_page(app: FastAPI, root_path: str = "") -> HTMLResponse:
    """The Swagger UI page, with a CSP that admits exactly its own inline script."""
    page = get_swagger_ui_html(
        openapi_url=f"{root_path}{app.openapi_url}", title=f"{app.title} — /docs",
        swagger_js_url=f"{root_path}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root_path}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root_path}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=None, swagger_ui_parameters={**(app.swagger_ui_parameters or {}), **SWAGGER_PARAMETERS})
    html = bytes(page.body).decode("utf-8")
    return HTMLResponse(html, headers={"Content-Security-Policy": page_csp(_INLINE_SCRIPT.findall(html))})


def install_docs(app: FastAPI) -> None:
    """``GET /docs`` and its assets on ``app`` (created with ``docs_url=None, redoc_url=None``)."""
    folder = asset_folder()
    loaded: dict[str, bytes] = {}  # read once per worker (2 MB in all)

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return docs_page(app, request.scope.get("root_path", ""))

    @app.get(f"{ASSETS_URL}/{{name}}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise ApiProblem(404, NO_ENDPOINT_DETAIL)
        if name not in loaded:
            loaded[name] = (folder / name).read_bytes()
        return Response(loaded[name], media_type=media_type)
