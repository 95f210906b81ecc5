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
from .monitor.alert_store import AlertStore
from .monitor.node_states import NodeStateStore
from .monitor.rules import load_alert_rules
from .monitor.service import MonitorService
from .office_hours import load_office_hours
from .routes import audit as audit_routes
from .routes import auth, employees, tokens
from .security.context import load_security
from .security.deps import (
    ADMIN_DEPENDENCIES,
    READ_ADMINISTER_DEPENDENCIES,
    READ_DEPENDENCIES,
    READ_OPERATE_DEPENDENCIES,
    STREAM_DEPENDENCIES,
    check_routes_protected,
)
from .security.pseudonyms import live_employee_id_mask
from .security.retention import RetentionTask
from .routes import (
    alerts,
    attendance,
    completeness,
    dead_letters,
    energy,
    exports,
    health,
    live,
    nodes,
    opds,
    overview,
    provisioning,
    readings,
    recap,
    rooms,
)

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
    alert_rules = load_alert_rules(settings.alert_rules_file)
    security = load_security(settings)
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
        security.sessions = registry

        app.state.context = AppContext(
            settings=settings,
            catalogue=catalogue,
            reader=reader,
            zone=ZoneInfo(settings.timezone),
            dead_letters=dead_letters,
            registry=registry,
            office_hours=office_hours,
        )
        logger.info(
            "API started: %d OPDs of %s, InfluxDB %s database %r, zone %s",
            len(catalogue.opds),
            catalogue.regency.name,
            settings.influx_url,
            settings.influx_db,
            settings.timezone,
        )

        # Live view: one MQTT subscription per process, fanned out to the SSE clients. The
        # monitor listens to the same subscription.
        app.state.live_hub = LiveHub(settings.live_queue_size)
        app.state.monitor = None
        listeners = []
        tasks = []
        if settings.monitor_enabled:
            monitor = MonitorService(
                catalogue,
                office_hours,
                alert_rules,
                AlertStore(registry),
                NodeStateStore(registry),
                app.state.live_hub,
                ZoneInfo(settings.timezone),
                settings.monitor_check_interval_s,
            )
            app.state.monitor = monitor
            listeners.append(monitor.on_message)
            tasks.append(asyncio.create_task(monitor.run(), name="monitor"))
        subscriber = LiveSubscriber(
            settings, app.state.live_hub, ZoneInfo(settings.timezone), listeners, live_employee_id_mask(security)
        )
        tasks.append(asyncio.create_task(subscriber.run(), name="live_subscriber"))
        if settings.attendance_retention_days:
            retention = RetentionTask(reader, registry, settings.attendance_retention_days, settings.attendance_retention_interval_s)
            tasks.append(asyncio.create_task(retention.run(), name="attendance_retention"))

        yield

        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
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
    app.state.alert_rules = alert_rules
    app.state.security = security
    install_error_handlers(app)

    # Each router gets the roles that may call it (api/security/deps.py); check_routes_protected
    # refuses to build an app with an /api/ route that has none.
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(opds.router, dependencies=READ_DEPENDENCIES)
    app.include_router(overview.router, dependencies=READ_DEPENDENCIES)
    app.include_router(readings.router, dependencies=READ_DEPENDENCIES)
    app.include_router(energy.router, dependencies=READ_DEPENDENCIES)
    app.include_router(attendance.router, dependencies=READ_DEPENDENCIES)
    app.include_router(recap.router, dependencies=READ_DEPENDENCIES)
    app.include_router(exports.router, dependencies=READ_DEPENDENCIES)
    app.include_router(dead_letters.router, dependencies=ADMIN_DEPENDENCIES)
    app.include_router(live.router, dependencies=STREAM_DEPENDENCIES)
    app.include_router(alerts.router, dependencies=READ_OPERATE_DEPENDENCIES)
    app.include_router(nodes.router, dependencies=READ_ADMINISTER_DEPENDENCIES)
    app.include_router(provisioning.router, dependencies=ADMIN_DEPENDENCIES)
    app.include_router(completeness.router, dependencies=READ_DEPENDENCIES)
    app.include_router(rooms.router, dependencies=READ_DEPENDENCIES)
    app.include_router(tokens.router, dependencies=ADMIN_DEPENDENCIES)
    app.include_router(audit_routes.router, dependencies=ADMIN_DEPENDENCIES)
    app.include_router(employees.router, dependencies=ADMIN_DEPENDENCIES)
    mount_dashboard(app)
    if settings.auth_enabled:
        check_routes_protected(app)
    return app
