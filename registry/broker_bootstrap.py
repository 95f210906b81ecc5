"""First configuration of Mosquitto's dynamic security plugin: the admin, ingest and API identities.

The plugin loads its clients, roles and ACLs from one JSON file (``plugin_opt_config_file``)
and rewrites that file after every change made through the control API. Before the first
start the file must exist and hold an administrator, or no client can make changes. This module
writes that file together with a credentials file of the three service identities. Both
files are created with mode 0600, because the credentials file contains plain passwords and the
plugin file password hashes.

Node identities are not written here: they are provisioned on the running broker
(``registry.provisioning``).
"""

import base64
import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .broker_acl import (
    ADMIN_USERNAME,
    API_USERNAME,
    DEFAULT_ACL_ACCESS,
    INGEST_USERNAME,
    admin_acls,
    api_acls,
    ingest_acls,
)

PBKDF2_ITERATIONS = 10_000
"""PBKDF2-SHA512 iterations of the hashes written here.

NOTE: clients created later through the control API get the broker's own count, 101 in
Mosquitto 2.0.11, so the plugin file must stay readable by the broker only.
"""

SALT_BYTES = 12
"""Salt length of the plugin's own hashes (``mosquitto_ctrl dynsec init`` in 2.0.11)."""

HASH_BYTES = 64
"""Length of a PBKDF2-SHA512 hash, bytes."""


class BootstrapError(RuntimeError):
    """Raised when a bootstrap or credentials file cannot be written or read."""


@dataclass(frozen=True, slots=True)
class ServiceCredentials:
    """User name and password of one service identity."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ServiceIdentities:
    """The three identities of the plugin file before any node is provisioned."""

    admin: ServiceCredentials
    """Dynsec administrator: used by provisioning to manage clients and roles."""
    ingest: ServiceCredentials
    api: ServiceCredentials

    def as_json(self) -> dict:
        """Return the identities as the credentials file stores them."""
        return {
            name: {"username": credentials.username, "password": credentials.password}
            for name, credentials in (("admin", self.admin), ("ingest", self.ingest), ("api", self.api))
        }

    @classmethod
    def from_json(cls, data: object, source: str) -> "ServiceIdentities":
        """Read identities from the credentials file's JSON. ``source`` is the file name for error messages."""
        try:
            return cls(
                **{
                    name: ServiceCredentials(str(data[name]["username"]), str(data[name]["password"]))
                    for name in ("admin", "ingest", "api")
                }
            )
        except (KeyError, TypeError) as exc:
            raise BootstrapError(
                f"credentials file {source} is invalid: {exc} is missing. It needs admin, ingest and api, "
                "each with username and password. Run 'smartoffice-registry bootstrap-broker' to write a new one"
            ) from None


def generate_password() -> str:
    """Return a random password of 256 bits, as 43 URL-safe characters."""
    return secrets.token_urlsafe(32)


def generate_service_identities() -> ServiceIdentities:
    """Return the admin, ingest and API identities with fresh random passwords."""
    return ServiceIdentities(
        admin=ServiceCredentials(ADMIN_USERNAME, generate_password()),
        ingest=ServiceCredentials(INGEST_USERNAME, generate_password()),
        api=ServiceCredentials(API_USERNAME, generate_password()),
    )


def hash_dynsec_password(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> dict:
    """Return the ``password``, ``salt`` and ``iterations`` fields of a client in the plugin file.

    The plugin stores base64 of PBKDF2-HMAC-SHA512 over the password with the raw salt bytes,
    64 bytes long. ``mosquitto_ctrl dynsec init`` of Mosquitto 2.0.11 writes the same form.
    """
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
    }


def _client_entry(credentials: ServiceCredentials, role: str, text_name: str) -> dict:
    return {
        "username": credentials.username,
        "textName": text_name,
        **hash_dynsec_password(credentials.password),
        "roles": [{"rolename": role}],
    }


def build_dynsec_config(identities: ServiceIdentities) -> dict:
    """Return the plugin file's content: the three service clients, their roles and the default access."""
    services = (
        (identities.admin, admin_acls(), "Kantor Pintar dynsec administrator"),
        (identities.ingest, ingest_acls(), "Kantor Pintar ingest service"),
        (identities.api, api_acls(), "Kantor Pintar API service"),
    )
    return {
        "clients": [_client_entry(credentials, credentials.username, text) for credentials, _, text in services],
        "roles": [
            {"rolename": credentials.username, "acls": [acl.as_json() for acl in acls]}
            for credentials, acls, _ in services
        ],
        "groups": [],
        "defaultACLAccess": dict(DEFAULT_ACL_ACCESS),
    }


def write_private_json(path: Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` with mode 0600, replacing the file in one step.

    The folder is created with mode 0700 when it is missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bootstrap(
    dynsec_file: Path, credentials_file: Path, identities: ServiceIdentities, overwrite: bool = False
) -> None:
    """Write the plugin file and the credentials file of ``identities``.

    Raises:
        BootstrapError: ``dynsec_file`` exists and ``overwrite`` is False. Replacing it
            deletes every provisioned node from the broker.
    """
    if Path(dynsec_file).exists() and not overwrite:
        raise BootstrapError(
            f"{dynsec_file} exists, and replacing it deletes every node identity on the broker. "
            "Pass --force to replace it anyway"
        )
    write_private_json(credentials_file, identities.as_json())
    write_private_json(dynsec_file, build_dynsec_config(identities))


def load_service_identities(credentials_file: Path) -> ServiceIdentities:
    """Read the credentials file written by ``write_bootstrap``.

    Raises:
        BootstrapError: the file is missing, unreadable or not in the expected form.
    """
    try:
        data = json.loads(Path(credentials_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BootstrapError(f"cannot read credentials file {credentials_file}: {exc}") from None
    return ServiceIdentities.from_json(data, str(credentials_file))
