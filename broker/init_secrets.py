"""Write the broker's first identities and each service's password file (``broker-init`` of docker-compose.yml).

Compose runs this once before the broker at every ``docker compose up``, as root in the app
image, with the volumes it writes mounted under ``/init``:

1. When the dynamic security file is missing, ``smartoffice-registry bootstrap-broker``
   writes it with new admin, ingest and API identities, and their passwords to the
   credentials file. An existing dynamic security file is kept, with every node provisioned
   in it, and the passwords are read from the credentials file.
2. Each ``--password-file IDENTITY=PATH`` receives that identity's password as its only
   line: the form that the ``SMARTOFFICE_*_PASSWORD_FILE`` settings read.
3. Each ``--client-options-file IDENTITY=PATH`` receives ``-u`` and ``-P`` lines: the
   options file that ``mosquitto_sub`` reads from ``$XDG_CONFIG_HOME/mosquitto_sub``, so that
   the broker's health check logs in without a password on its command line.
4. The dynamic security file and its folder go to ``--dynsec-owner``, the broker's user,
   because Mosquitto 2 drops root before it loads the plugin and rewrites that file. Every
   other file goes to ``--owner``, the services' user. Every file has mode 0600. The
   credentials file stays with the user running this script (root in Compose).

Exit status 0 on success, 2 on an error, which is printed with the file involved. No
password is printed or logged.
"""

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from registry.__main__ import main as registry_main
from registry.broker_bootstrap import BootstrapError, ServiceCredentials, ServiceIdentities, load_service_identities

logger = logging.getLogger("broker-init")

IDENTITIES = ("admin", "ingest", "api")
"""Identity names of the credentials file, as ``--password-file`` and ``--client-options-file`` take them."""


class InitError(RuntimeError):
    """Raised when the files cannot be written consistently; the message names the file and the fix."""


def parse_owner(text: str) -> tuple[int, int]:
    """Parse ``UID:GID`` into two integers."""
    user, separator, group = text.partition(":")
    if not separator or not user.isdigit() or not group.isdigit():
        raise argparse.ArgumentTypeError(f"invalid owner {text!r}: expected numeric UID:GID, e.g. 10001:10001")
    return int(user), int(group)


def parse_destination(text: str) -> tuple[str, Path]:
    """Parse ``IDENTITY=PATH``, where IDENTITY is one of ``IDENTITIES``."""
    identity, separator, path = text.partition("=")
    if not separator or identity not in IDENTITIES or not path:
        raise argparse.ArgumentTypeError(
            f"invalid destination {text!r}: expected IDENTITY=PATH with IDENTITY one of {', '.join(IDENTITIES)}"
        )
    return identity, Path(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="init_secrets.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dynsec-file", type=Path, required=True, help="plugin_opt_config_file of the broker, at its path here"
    )
    parser.add_argument(
        "--dynsec-owner", type=parse_owner, help="UID:GID of the broker's user (1883:1883 in eclipse-mosquitto:2)"
    )
    parser.add_argument(
        "--credentials-file",
        type=Path,
        required=True,
        help="JSON file of the service passwords, written by bootstrap-broker",
    )
    parser.add_argument(
        "--password-file",
        type=parse_destination,
        action="append",
        default=[],
        metavar="IDENTITY=PATH",
        help="write IDENTITY's password to PATH; repeat for several",
    )
    parser.add_argument(
        "--client-options-file",
        type=parse_destination,
        action="append",
        default=[],
        metavar="IDENTITY=PATH",
        help="write IDENTITY's login as mosquitto_sub options to PATH; repeat for several",
    )
    parser.add_argument(
        "--owner", type=parse_owner, help="UID:GID of the services' user (10001:10001 in the app image)"
    )
    return parser


def ensure_bootstrap(dynsec_file: Path, credentials_file: Path) -> ServiceIdentities:
    """Bootstrap the broker when its dynamic security file is missing; return the service identities.

    Raises:
        InitError: the dynamic security file exists but the credentials file does not, or
            bootstrap-broker failed.
        BootstrapError: the credentials file cannot be read.
    """
    if dynsec_file.exists():
        if not credentials_file.exists():
            raise InitError(
                f"{dynsec_file} exists, but {credentials_file} with the service passwords is missing. Restore it from "
                f"a backup, or delete {dynsec_file} to bootstrap again, which deletes every node identity"
            )
        logger.info("keeping %s and the service identities in %s", dynsec_file, credentials_file)
        return load_service_identities(credentials_file)

    if credentials_file.exists():
        logger.warning(
            "%s is missing, so the service passwords in %s are replaced by new ones", dynsec_file, credentials_file
        )
    status = registry_main(
        ["bootstrap-broker", "--dynsec-file", str(dynsec_file), "--credentials-file", str(credentials_file)]
    )
    if status != 0:
        raise InitError(f"smartoffice-registry bootstrap-broker exited with status {status}")
    return load_service_identities(credentials_file)


def write_private_text(path: Path, text: str, owner: tuple[int, int] | None) -> None:
    """Write ``text`` to ``path`` with mode 0600 and ``owner``, replacing the file in one step."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o600)
        if owner is not None:
            os.chown(temporary, *owner)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def client_options(credentials: ServiceCredentials) -> str:
    """Return a mosquitto_sub options file that logs in as ``credentials``, one option per line."""
    return (
        "# mosquitto_sub options of the broker's health check, written by broker-init\n"
        f"-u {credentials.username}\n"
        f"-P {credentials.password}\n"
    )


def run(args: argparse.Namespace) -> None:
    """Run every step of the module docstring.

    Raises:
        InitError, BootstrapError, OSError: a file could not be read or written.
    """
    identities = ensure_bootstrap(args.dynsec_file, args.credentials_file)

    for identity, path in args.password_file:
        credentials = getattr(identities, identity)
        write_private_text(path, credentials.password + "\n", args.owner)
        logger.info("wrote the password of %s to %s", credentials.username, path)

    for identity, path in args.client_options_file:
        credentials = getattr(identities, identity)
        write_private_text(path, client_options(credentials), args.owner)
        logger.info("wrote the mosquitto_sub login of %s to %s", credentials.username, path)

    if args.dynsec_owner is not None:
        os.chown(args.dynsec_file.parent, *args.dynsec_owner)
        os.chown(args.dynsec_file, *args.dynsec_owner)
        os.chmod(args.dynsec_file, 0o600)
        logger.info("%s belongs to %d:%d, the broker's user", args.dynsec_file, *args.dynsec_owner)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (InitError, BootstrapError, OSError) as exc:
        logger.error("broker initialisation failed: %s", exc)
        return 2
    logger.info("broker initialisation finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
