"""Alembic environment: runs the registry's migrations on the URL the caller configured."""

from alembic import context

from registry.db import make_engine
from registry.models import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    """Emit the migrations as SQL for a DBA to review and run."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Apply the migrations through a connection."""
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
