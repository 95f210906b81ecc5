"""Bring a registry database to the newest schema with the Alembic migrations in this package."""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from .db import redacted

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """Return an Alembic configuration for ``url`` that needs no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config is a ConfigParser, so '%' in a password must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to ``revision``; a database already there is left unchanged."""
    log.info("migrating registry %s to %s", redacted(url), revision)
    command.upgrade(alembic_config(url), revision)
