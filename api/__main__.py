"""Entry point: ``python -m api`` or ``smartoffice-api``; options come from the environment."""

import logging
import sys

import uvicorn
from pydantic import ValidationError

from contract.catalogue import CatalogueError

from .app import create_app
from .config import ApiSettings


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
    except CatalogueError as exc:
        logging.getLogger("api").error("cannot start: %s", exc)
        return 2

    # Open live streams would otherwise hold a SIGTERM until every browser disconnects.
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
