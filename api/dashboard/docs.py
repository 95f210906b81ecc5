"""Swagger UI at ``/docs`` with its files served by the API, so the page works without internet.

FastAPI's own ``/docs`` loads Swagger UI from cdn.jsdelivr.net and ``/redoc`` loads ReDoc
from the same CDN. The application turns both off (``docs_url=None, redoc_url=None``) and this
module serves Swagger UI 5 from the ``swagger-ui-bundle-v2`` package, pinned in
``pyproject.toml``. ReDoc has no such package, so ``/redoc`` stays off. The raw description
is ``/openapi.json``.
"""

import logging

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

logger = logging.getLogger(__name__)

DOCS_PATH = "/docs"
DOCS_STATIC_PATH = "/docs/static"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
FAVICON_PATH = "/dashboard/static/icons/favicon.svg"

SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
"""Swagger UI options. A null validatorUrl keeps the page from sending the description to validator.swagger.io."""


def mount_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` from the installed ``swagger-ui-bundle-v2`` files.

    Without the package the API still starts and ``/docs`` returns 404. The warning names the
    package to install.
    """
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        logger.warning(
            "Swagger UI files not found: /docs is off. Install the package swagger-ui-bundle-v2 "
            "(pip install -e . installs it); /openapi.json still works"
        )
        return

    app.mount(DOCS_STATIC_PATH, StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def read_docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=root + FAVICON_PATH,
            oauth2_redirect_url=root + OAUTH2_REDIRECT_PATH,
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def read_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
