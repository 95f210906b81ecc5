"""First-run set-up of a local platform: secret files and a first admin user.

``python -m devstack`` calls these before it starts the services, so the local platform has
a stable JWT secret and pseudonym key across restarts and an admin who can log in.
"""

import os
import secrets
import time
from pathlib import Path

from sqlalchemy import select

from registry.db import make_engine, session_factory, transaction
from registry.migrate import upgrade
from registry.models import User

from .audit import write_entry
from .passwords import hash_password
from .principals import Role

FIRST_ADMIN = "admin"


def ensure_secret_file(path: Path) -> Path:
    """Create ``path`` with 64 random hex characters, readable by its owner only, unless it exists; return it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_hex(32) + "\n")
    return path


def ensure_first_admin(database_url: str, password_file: Path) -> str | None:
    """Create the user ``admin`` with a random password written to ``password_file`` when the registry has no admin.

    Returns:
        The new password, to show once, or None when an admin exists already.
    """
    upgrade(database_url)
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    try:
        with sessions() as session:
            if session.scalar(select(User.id).where(User.role == Role.ADMIN.value).limit(1)) is not None:
                return None

        password = secrets.token_urlsafe(18)
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.unlink(missing_ok=True)
        descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(password + "\n")

        with transaction(sessions) as session:
            session.add(
                User(
                    username=FIRST_ADMIN,
                    full_name="Administrator",
                    role=Role.ADMIN.value,
                    password_hash=hash_password(password),
                    opds=None,
                    disabled=False,
                    failed_logins=0,
                    created_at_ms=int(time.time() * 1000),
                )
            )
        write_entry(sessions, "system:devstack", "user.create", f"user:{FIRST_ADMIN}", {"role": Role.ADMIN.value})
        return password
    finally:
        engine.dispose()
