"""Entry point: ``python -m ingest`` or ``smartoffice-ingest``; options come from the environment."""

import asyncio
import logging
import signal
import sys

from pydantic import ValidationError

from .config import IngestSettings
from .metrics import serve_metrics
from .pseudonyms import Pseudonymizer, PseudonymKeyError, load_key
from .service import IngestService

logger = logging.getLogger("ingest")


async def _run(settings: IngestSettings, pseudonymizer: Pseudonymizer | None) -> None:
    service = IngestService(settings, pseudonymizer=pseudonymizer)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, service.stop)

    metrics_server = None
    if settings.metrics_port:
        metrics_server = await serve_metrics(service.metrics, settings.metrics_host, settings.metrics_port)
    try:
        await service.run()
    finally:
        if metrics_server is not None:
            metrics_server.close()


def main() -> int:
    try:
        settings = IngestSettings()
    except ValidationError as exc:
        print(f"invalid ingest settings:\n{exc}", file=sys.stderr)
        return 2

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO, which on the write path is one line per batch.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        pseudonymizer = _pseudonymizer(settings)
    except PseudonymKeyError as exc:
        logger.error("cannot start: %s", exc)
        return 2
    asyncio.run(_run(settings, pseudonymizer))
    return 0


def _pseudonymizer(settings: IngestSettings) -> Pseudonymizer | None:
    """Return the pseudonymizer of employee ids, or None when a development set-up turned it off.

    Raises:
        PseudonymKeyError: pseudonyms are on and no valid key is configured.
    """
    key = load_key(settings.pseudonym_key, settings.pseudonym_key_file)
    if not settings.pseudonymize:
        logger.warning(
            "SMARTOFFICE_PSEUDONYMIZE=false: attendance employee ids are stored in InfluxDB as sent. "
            "Use this only for development, never with real employees"
        )
        return None
    if key is None:
        raise PseudonymKeyError(
            "attendance employee ids must be stored as pseudonyms, but no key is set: set SMARTOFFICE_PSEUDONYM_KEY "
            "or SMARTOFFICE_PSEUDONYM_KEY_FILE (the same key as the API's; generate one with: openssl rand -hex 32), "
            "or SMARTOFFICE_PSEUDONYMIZE=false for a development set-up"
        )
    logger.info("attendance employee ids are stored as keyed pseudonyms")
    return Pseudonymizer(key)


if __name__ == "__main__":
    sys.exit(main())
