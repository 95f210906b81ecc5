"""Entry point: ``python -m ingest`` or ``smartoffice-ingest``; options come from the environment."""

import asyncio
import logging
import signal
import sys

from pydantic import ValidationError

from .config import IngestSettings
from .metrics import serve_metrics
from .service import IngestService

logger = logging.getLogger("ingest")


async def _run(settings: IngestSettings) -> None:
    service = IngestService(settings)
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
    asyncio.run(_run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
