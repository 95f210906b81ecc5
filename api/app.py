"""FastAPI application factory."""

import logging
from contextlib import asynccontextmanager
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from contract.catalogue import load_catalogue
from ingest.dead_letters import DeadLetterStore

from .config import ApiSettings
from .deps import AppContext
from .errors import install_error_handlers
from .influx import InfluxReader
from .routes import attendance, dead_letters, energy, health, opds, readings

logger = logging.getLogger(__name__)

DESCRIPTION = """
Kantor Pintar command-server API: the attendance, energy and room data of every OPD office.

Times are UTC epoch milliseconds (`ts`) and ISO 8601 in the deployment's time zone (`time`).
Error answers are `{"detail": ..., "code": ..., "parameter": ...}`, in Bahasa Indonesia by
default; add `?lang=en` or `Accept-Language: en` for English.
"""


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the application; the catalogue is loaded now, so a bad file fails at start-up."""
    settings = settings or ApiSettings()
    catalogue = load_catalogue(settings.catalogue_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        reader = InfluxReader(
            settings.influx_url,
            settings.influx_db,
            settings.influx_username,
            settings.influx_password,
            settings.influx_timeout_s,
        )
        dead_letters = DeadLetterStore(settings.dead_letter_path)
        app.state.context = AppContext(
            settings=settings,
            catalogue=catalogue,
            reader=reader,
            zone=ZoneInfo(settings.timezone),
            dead_letters=dead_letters,
        )
        logger.info(
            "API started: %d OPDs of %s, InfluxDB %s database %r, zone %s",
            len(catalogue.opds),
            catalogue.regency.name,
            settings.influx_url,
            settings.influx_db,
            settings.timezone,
        )
        yield
        await reader.close()
        dead_letters.close()
        logger.info("API stopped")

    app = FastAPI(title="Kantor Pintar API", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(opds.router)
    app.include_router(readings.router)
    app.include_router(energy.router)
    app.include_router(attendance.router)
    app.include_router(dead_letters.router)
    return app
