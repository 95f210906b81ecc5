"""Per-node broker credentials of the simulator, read from a node credentials file.

The file is JSON (``smartoffice-registry provision-node --credentials-file`` and the local
platform write it)::

    {"nodes": {"<opd>/<node>": {"username": "...", "password": "...", "client_id": "..."}}}

``client_id`` is optional. When it is given, the node connects with it in place of its
default ``sim-<opd>-<node>``, because the broker may accept only that id for the user name.
"""

import json
import logging
import stat
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class CredentialsFileError(ValueError):
    """Raised when the node credentials file is missing, unreadable or not in the expected form."""


@dataclass(frozen=True, slots=True)
class NodeCredentials:
    """Broker login of one simulated node."""

    username: str
    password: str = field(repr=False)
    client_id: str | None = None


def load_credentials_file(path: Path) -> dict[tuple[str, str], NodeCredentials]:
    """Return the credentials of the file by ``(opd, node)``.

    A file that users other than its owner can read is loaded, with a warning.

    Raises:
        CredentialsFileError: the file cannot be read, is not JSON, or an entry lacks a
            user name or password. The message names the file and the entry, never a password.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except OSError as exc:
        raise CredentialsFileError(f"cannot read node credentials file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "node credentials file %s can be read by users other than its owner: run chmod 600 %s", path, path
        )

    try:
        nodes = json.loads(text)["nodes"]
    except (ValueError, KeyError, TypeError):
        raise CredentialsFileError(
            f'node credentials file {path} is invalid: expected {{"nodes": {{"<opd>/<node>": {{...}}}}}}'
        ) from None
    if not isinstance(nodes, dict):
        raise CredentialsFileError(f"node credentials file {path} is invalid: 'nodes' must be an object")

    credentials = {}
    for key, entry in nodes.items():
        opd, _, node = key.partition("/")
        if not opd or not node:
            raise CredentialsFileError(f"node credentials file {path}: key {key!r} is invalid, expected '<opd>/<node>'")
        if not isinstance(entry, dict) or not entry.get("username") or not entry.get("password"):
            raise CredentialsFileError(f"node credentials file {path}: entry {key!r} needs a username and a password")
        client_id = entry.get("client_id")
        credentials[(opd, node)] = NodeCredentials(
            username=str(entry["username"]),
            password=str(entry["password"]),
            client_id=str(client_id) if client_id else None,
        )
    return credentials
