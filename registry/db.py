"""Engine and sessions of the registry database.

The URL comes from ``SMARTOFFICE_DATABASE_URL``: ``sqlite:///path/registry.sqlite3`` by default,
``postgresql+psycopg://user:password@host/db`` for PostgreSQL. SQLite runs in WAL mode with
foreign keys on, so readers (API requests) do not wait for a writer such as the alert monitor.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///registry.sqlite3"


def make_engine(url: str = DEFAULT_URL) -> Engine:
    """Create an engine for ``url``; SQLite connections get WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a factory of sessions whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit when the block ends without error, roll back otherwise."""
    with factory() as session, session.begin():
        yield session


def redacted(url: str) -> str:
    """Return ``url`` with its password hidden, for logs."""
    return make_url(url).render_as_string(hide_password=True)
