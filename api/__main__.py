"""Entry point: ``python -m api`` or ``smartoffice-api``; options come from the environment."""

import logging
import sys

import uvicorn
from pydantic import ValidationError

from contract.catalogue import CatalogueError

from .app import create_app
from .config import ApiSettings
from .security.context import SecurityConfigError


def main() -> int:
    try:
        settings = ApiSettings()
    except ValidationError as exc:
        print(f"invalid API settings:\n{exc}", file=sys.stderr)
        return 2

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        app = create_app(settings)
    except (CatalogueError, SecurityConfigError) as exc:
        logging.getLogger("api").error("cannot start: %s", exc)
        return 2
    tls = _tls_options(settings)

    # Open live streams would otherwise hold a SIGTERM until every browser disconnects.
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        **tls,
    )
    return 0


def _tls_options(settings: ApiSettings) -> dict[str, str]:
    """Return uvicorn's TLS options: HTTPS with the configured certificate and key, else nothing (HTTP)."""
    if settings.ssl_certfile is None or settings.ssl_keyfile is None:
        logging.getLogger("api").info("serving plain HTTP on %s:%d", settings.api_host, settings.api_port)
        return {}
    logging.getLogger("api").info(
        "serving HTTPS on %s:%d with certificate %s", settings.api_host, settings.api_port, settings.ssl_certfile
    )
    return {"ssl_certfile": str(settings.ssl_certfile), "ssl_keyfile": str(settings.ssl_keyfile)}


if __name__ == "__main__":
    sys.exit(main())
