"""Retention of raw attendance punches: delete those older than ``attendance_retention_days``.

InfluxDB 1.x applies a retention policy to a whole database, not to one measurement, so the
API deletes old attendance points itself with ``DELETE FROM "attendance" WHERE time < ...``.
The API process runs it at start-up and then every ``attendance_retention_interval_s``; the
command ``python -m api.security.retention`` runs it once, e.g. from cron. Each run that deletes
points writes an ``attendance.retention`` entry to the audit log.

NOTE: with authentication on in InfluxDB, ``DELETE`` needs a user with write privilege on the
database, more than the read access the API's other queries need.
"""

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from registry.db import make_engine, session_factory
from registry.migrate import upgrade

from ..config import ApiSettings
from ..errors import ApiError, Unavailable
from ..influx import InfluxReader, QueryFailed, quote_ident
from .audit import write_entry

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000
ACTOR = "system:retention"
MEASUREMENT = "attendance"


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """Outcome of one run: the cut-off (epoch ms) and the punches deleted before it."""

    cutoff_ms: int
    deleted: int


async def delete_old_attendance(
    reader: InfluxReader, sessions: sessionmaker[Session], retention_days: int, now_ms: int | None = None
) -> RetentionResult:
    """Delete attendance points older than ``retention_days`` before ``now_ms``; return how many.

    The count comes from a ``count()`` just before the ``DELETE``, so punches that arrive in
    between with an old timestamp are deleted without being counted.

    Raises:
        Unavailable: InfluxDB or the registry cannot be reached.
        QueryFailed: InfluxDB rejected a statement.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    cutoff_ms = now_ms - retention_days * DAY_MS
    measurement = quote_ident(MEASUREMENT)

    answers = await reader.query(f"SELECT count({quote_ident('employee_id')}) FROM {measurement} WHERE time < {cutoff_ms}ms")
    deleted = sum(int(row["count"]) for series in answers[0] for row in series.rows)
    if deleted:
        await reader.query(f"DELETE FROM {measurement} WHERE time < {cutoff_ms}ms")
        await asyncio.to_thread(
            write_entry,
            sessions,
            ACTOR,
            "attendance.retention",
            f"influxdb:{reader.database}/{MEASUREMENT}",
            {"cutoff_ms": cutoff_ms, "deleted": deleted, "retention_days": retention_days},
        )
    logger.info("attendance retention: %d punches older than %d days deleted", deleted, retention_days)
    return RetentionResult(cutoff_ms=cutoff_ms, deleted=deleted)


class RetentionTask:
    """The API process's periodic retention run."""

    def __init__(
        self, reader: InfluxReader, sessions: sessionmaker[Session], retention_days: int, interval_s: float
    ) -> None:
        self.reader = reader
        self.sessions = sessions
        self.retention_days = retention_days
        self.interval_s = interval_s

    async def run(self) -> None:
        """Run now and then every ``interval_s`` until cancelled; a failed run is logged and retried at the next."""
        logger.info(
            "attendance retention: deleting punches older than %d days every %.0f s", self.retention_days, self.interval_s
        )
        while True:
            try:
                await delete_old_attendance(self.reader, self.sessions, self.retention_days)
            except (ApiError, QueryFailed) as exc:
                reason = exc.reason if isinstance(exc, Unavailable) else str(exc)
                logger.warning("attendance retention failed, next try in %.0f s: %s", self.interval_s, reason)
            await asyncio.sleep(self.interval_s)


def main(argv: list[str] | None = None) -> int:
    """Run the retention once with the API's settings; return the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m api.security.retention",
        description="Delete attendance punches older than SMARTOFFICE_ATTENDANCE_RETENTION_DAYS from InfluxDB.",
    )
    parser.add_argument("--days", type=int, help="retention in days instead of SMARTOFFICE_ATTENDANCE_RETENTION_DAYS")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = ApiSettings()
    except ValidationError as exc:
        print(f"invalid API settings:\n{exc}", file=sys.stderr)
        return 2

    days = args.days if args.days is not None else settings.attendance_retention_days
    if days <= 0:
        print("retention is off (0 days); nothing deleted", file=sys.stderr)
        return 0
    if days < 62:
        print(f"error: --days {days} is shorter than the 62 days of a recap; use 62 or more", file=sys.stderr)
        return 2
    return asyncio.run(_run_once(settings, days))


async def _run_once(settings: ApiSettings, days: int) -> int:
    reader = InfluxReader(
        settings.influx_url, settings.influx_db, settings.influx_username, settings.influx_password, settings.influx_timeout_s
    )
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        result = await delete_old_attendance(reader, session_factory(engine), days)
    except Unavailable as exc:
        logger.error("attendance retention failed: %s", exc.reason)
        return 1
    except QueryFailed as exc:
        logger.error("attendance retention failed: %s", exc)
        return 1
    finally:
        await reader.close()
        engine.dispose()
    print(f"deleted {result.deleted} attendance punches older than {days} days")
    return 0


if __name__ == "__main__":
    sys.exit(main())
