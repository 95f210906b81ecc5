"""Command line for users and integration tokens: ``python -m api.security.users_cli COMMAND``.

Commands: ``create-user``, ``unlock-user``, ``create-token``, ``revoke-token``. The registry URL
comes from ``--database-url`` or ``SMARTOFFICE_DATABASE_URL``. A password is read from stdin
with ``--password-stdin`` or generated and printed once. It is never a command-line argument,
because other users of the machine can read arguments in the process list. Each command
writes an audit entry whose actor is ``cli:<login name>``.
"""

import argparse
import getpass
import logging
import os
import secrets
import sys
import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from contract import id_problem
from registry.db import DEFAULT_URL, make_engine, session_factory, transaction
from registry.migrate import upgrade
from registry.models import User

from .api_tokens import create_api_token, revoke_api_token
from .audit import write_entry
from .passwords import WeakPasswordError, hash_password
from .principals import SCOPED_ROLES, USER_ROLES, Role

GENERATED_PASSWORD_BYTES = 18
"""Random bytes of a generated password: 24 URL-safe characters."""


class CommandError(Exception):
    """Raised for invalid input; the message is printed and the exit status is 2."""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every command."""
    parser = argparse.ArgumentParser(prog="python -m api.security.users_cli", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SMARTOFFICE_DATABASE_URL", DEFAULT_URL),
        help="SQLAlchemy URL of the registry (default: SMARTOFFICE_DATABASE_URL or %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    user = commands.add_parser("create-user", help="add a user who logs in with a password")
    user.add_argument("username")
    user.add_argument("--role", required=True, choices=[role.value for role in USER_ROLES])
    user.add_argument("--opd", action="append", default=[], help="OPD id a facility_manager may see; repeat for several")
    user.add_argument("--full-name", default="", help="name shown in the dashboard")
    user.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")

    unlock = commands.add_parser("unlock-user", help="clear a user's lock-out and failed-login count")
    unlock.add_argument("username")

    token = commands.add_parser("create-token", help="add a read-only integration token; it is printed once")
    token.add_argument("name", help="what the token is for, e.g. bkpsdm-sync")
    token.add_argument("--opd", action="append", required=True, help="OPD id the token may read; repeat for several")
    token.add_argument("--days", type=int, default=90, help="lifetime in days (default 90)")

    revoke = commands.add_parser("revoke-token", help="revoke an integration token by its id")
    revoke.add_argument("token_id", type=int)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the process exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    upgrade(args.database_url)
    engine = make_engine(args.database_url)
    sessions = session_factory(engine)
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.command == "create-user":
            password, generated = _password(args.password_stdin)
            create_user(sessions, args.username, Role(args.role), args.opd, args.full_name, password, actor)
            if generated:
                print(f"password of {args.username} (shown once): {password}")
            print(f"created user {args.username} with role {args.role}")
        elif args.command == "unlock-user":
            unlock_user(sessions, args.username, actor)
            print(f"unlocked user {args.username}")
        elif args.command == "create-token":
            _check_opds(args.opd)
            if not 1 <= args.days <= 3650:
                raise CommandError(f"--days {args.days} is out of range; use 1 to 3650")
            record, token = create_api_token(sessions, args.name, args.opd, args.days, actor)
            write_entry(sessions, actor, "token.create", f"token:{record.id}", {"name": record.name, "opds": record.opds})
            print(f"token #{record.id} for {', '.join(record.opds)} (shown once, store it now): {token}")
        elif args.command == "revoke-token":
            record = revoke_api_token(sessions, args.token_id)
            if record is None:
                raise CommandError(f"token #{args.token_id} not found")
            write_entry(sessions, actor, "token.revoke", f"token:{record.id}", {"name": record.name})
            print(f"revoked token #{record.id} ({record.name})")
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


def create_user(
    sessions: sessionmaker[Session],
    username: str,
    role: Role,
    opds: list[str],
    full_name: str,
    password: str,
    actor: str,
) -> None:
    """Add a user with the Argon2id hash of ``password`` and write the audit entry.

    Raises:
        CommandError: invalid user name, role without OPDs, weak password, or the user exists.
    """
    if not username or len(username) > 150 or any(character.isspace() for character in username):
        raise CommandError(f"user name {username!r} is invalid: use 1 to 150 characters without spaces")
    if role not in USER_ROLES:
        raise CommandError(f"role {role.value!r} is for API tokens; use create-token")
    if role in SCOPED_ROLES and not opds:
        raise CommandError(f"role {role.value} needs at least one --opd")
    _check_opds(opds)
    try:
        password_hash = hash_password(password)
    except WeakPasswordError as exc:
        raise CommandError(str(exc)) from None

    user = User(
        username=username,
        full_name=full_name,
        role=role.value,
        password_hash=password_hash,
        opds=sorted(set(opds)) if role in SCOPED_ROLES else None,
        disabled=False,
        failed_logins=0,
        created_at_ms=int(time.time() * 1000),
    )
    try:
        with transaction(sessions) as session:
            session.add(user)
    except IntegrityError:
        raise CommandError(f"user {username!r} already exists") from None
    write_entry(sessions, actor, "user.create", f"user:{username}", {"role": role.value, "opds": user.opds})


def unlock_user(sessions: sessionmaker[Session], username: str, actor: str) -> None:
    """Clear the lock-out of ``username``.

    Raises:
        CommandError: the user does not exist.
    """
    with transaction(sessions) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise CommandError(f"user {username!r} not found")
        user.failed_logins = 0
        user.locked_until_ms = None
    write_entry(sessions, actor, "user.unlock", f"user:{username}")


def generate_password() -> str:
    """Return a random password of 24 URL-safe characters."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def _password(from_stdin: bool) -> tuple[str, bool]:
    if not from_stdin:
        return generate_password(), True
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise CommandError("--password-stdin: stdin is empty")
    return line, False


def _check_opds(opds: list[str]) -> None:
    for opd in opds:
        problem = id_problem(opd)
        if problem:
            raise CommandError(f"--opd {opd!r}: {problem}")


if __name__ == "__main__":
    sys.exit(main())
