"""Web dashboard of the command server and the offline API documentation, served by the API.

``mount_dashboard(app)`` adds these routes to the application:

- ``GET /`` redirects to ``/dashboard/``.
- ``GET /dashboard/`` is the dashboard's single HTML page. Its scripts, styles, i18n files
  and icons are under ``/dashboard/static/``, from this package's ``static/`` folder, so the
  browser needs nothing but the API: no build step, no CDN, no internet.
- ``GET /api/v1/meta`` returns the deployment facts the dashboard shows (``meta.py``).
- ``GET /docs`` is Swagger UI with its files from the ``swagger-ui-bundle-v2`` package
  (``docs.py``).

The dashboard page sends a Content-Security-Policy that allows scripts, styles, images and
connections to this origin only, so the browser itself rejects any CDN request.
"""

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from . import docs, meta

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""Folder of the dashboard's HTML, CSS, JavaScript modules, i18n JSON and icons."""

DASHBOARD_PATH = "/dashboard/"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


def mount_dashboard(app: FastAPI) -> None:
    """Add the dashboard page, its static files, ``/api/v1/meta`` and the offline ``/docs`` to ``app``.

    Call it once from the application factory, after the API routers are included. The
    application must be built with ``docs_url=None`` and ``redoc_url=None``, because FastAPI's
    own pages load Swagger UI and ReDoc from a CDN.

    Raises:
        RuntimeError: when the ``static/`` folder is missing, which means a broken install.
    """
    index_file = STATIC_DIR / "index.html"
    if not index_file.is_file():
        raise RuntimeError(
            f"dashboard page {index_file} is missing; reinstall the project so that its package data is included"
        )

    @app.get("/", include_in_schema=False)
    async def redirect_to_dashboard(request: Request) -> RedirectResponse:
        return RedirectResponse(_root_path(request) + DASHBOARD_PATH, status_code=307)

    @app.get(DASHBOARD_PATH, include_in_schema=False)
    async def read_dashboard() -> FileResponse:
        headers = {"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY}
        return FileResponse(index_file, media_type="text/html; charset=utf-8", headers=headers)

    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.include_router(meta.router)
    docs.mount_docs(app)
    logger.debug("dashboard mounted at %s from %s", DASHBOARD_PATH, STATIC_DIR)


def _root_path(request: Request) -> str:
    """Return the path prefix under which a reverse proxy serves the API, '' when none."""
    return request.scope.get("root_path", "").rstrip("/")
