"""FastAPI application factory."""

import asyncio
import logging
from contextlib import asynccontextmanager, suppress
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from contract.catalogue import CatalogueError, load_catalogue
from ingest.dead_letters import DeadLetterStore
from registry.db import make_engine, session_factory, transaction
from registry.migrate import upgrade as upgrade_registry
from registry.seed import seed_catalogue

from .config import ApiSettings
from .dashboard import mount_dashboard
from .deps import AppContext
from .errors import ApiError, install_error_handlers
from .influx import InfluxReader
from .live import LiveHub, LiveSubscriber
from .office_hours import load_office_hours
from .routes import attendance, dead_letters, energy, exports, health, live, opds, overview, readings, recap

logger = logging.getLogger(__name__)

DESCRIPTION = """
Kantor Pintar command-server API: the attendance, energy and room data of every OPD office.

Times are UTC epoch milliseconds (`ts`) and ISO 8601 in the deployment's time zone (`time`).
Error answers are `{"detail": ..., "code": ..., "parameter": ...}`, in Bahasa Indonesia by
default; add `?lang=en` or `Accept-Language: en` for English.
"""


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the application; the catalogue and office hours are loaded now, so a bad file fails at start-up."""
    settings = settings or ApiSettings()
    catalogue = load_catalogue(settings.catalogue_file)
    office_hours = load_office_hours(settings.office_hours_file)
    try:
        energy.tariff_table(settings.tariffs_file)
    except ApiError as exc:
        raise CatalogueError(f"invalid tariff file: {exc.values.get('problem')}") from None

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
        upgrade_registry(settings.database_url)
        registry_engine = make_engine(settings.database_url)
        registry = session_factory(registry_engine)
        with transaction(registry) as session:
            seed_catalogue(session, catalogue)

        app.state.context = AppContext(
            settings=settings,
            catalogue=catalogue,
            reader=reader,
            zone=ZoneInfo(settings.timezone),
            dead_letters=dead_letters,
            registry=registry,
        )
        logger.info(
            "API started: %d OPDs of %s, InfluxDB %s database %r, zone %s",
            len(catalogue.opds),
            catalogue.regency.name,
            settings.influx_url,
            settings.influx_db,
            settings.timezone,
        )

        # Live view: one MQTT subscription per process, fanned out to the SSE clients.
        app.state.live_hub = LiveHub(settings.live_queue_size)
        subscriber = LiveSubscriber(settings, app.state.live_hub, ZoneInfo(settings.timezone))
        live_task = asyncio.create_task(subscriber.run(), name="live_subscriber")

        yield

        live_task.cancel()
        with suppress(asyncio.CancelledError):
            await live_task
        await reader.close()
        dead_letters.close()
        registry_engine.dispose()
        logger.info("API stopped")

    # FastAPI's own /docs and /redoc load their scripts from a CDN; mount_dashboard serves /docs offline.
    app = FastAPI(
        title="Kantor Pintar API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.office_hours = office_hours
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(opds.router)
    app.include_router(overview.router)
    app.include_router(readings.router)
    app.include_router(energy.router)
    app.include_router(attendance.router)
    app.include_router(recap.router)
    app.include_router(exports.router)
    app.include_router(dead_letters.router)
    app.include_router(live.router)
    mount_dashboard(app)
    return app
