"""The node credentials file: broker credentials of several nodes in one JSON file with mode 0600.

The simulator reads it (``SMARTOFFICE_SIM_CREDENTIALS_FILE``) to connect each simulated node
with its own identity. Its form::

    {"nodes": {"<opd>/<node>": {"username": "...", "password": "...", "client_id": "..."}}}
"""

import json
from pathlib import Path

from .broker_bootstrap import BootstrapError, write_private_json
from .provisioning import NodeCredentials


def read_node_entries(path: Path) -> dict[str, dict]:
    """Return the ``nodes`` object of the file, or an empty one when the file does not exist.

    Raises:
        BootstrapError: the file exists but is not a credentials file.
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BootstrapError(f"cannot read node credentials file {path}: {exc}") from None
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, dict):
        raise BootstrapError(f"node credentials file {path} has no 'nodes' object. Delete it to start afresh")
    return nodes


def save_node_credentials(path: Path, credentials: list[NodeCredentials]) -> None:
    """Add or replace the entries of ``credentials`` in the file, keeping the other nodes."""
    nodes = read_node_entries(path)
    for entry in credentials:
        nodes[f"{entry.opd}/{entry.node}"] = {
            "username": entry.username,
            "password": entry.password,
            "client_id": entry.client_id,
        }
    write_private_json(path, {"nodes": nodes})


def remove_node_credentials(path: Path, opd: str, node: str) -> bool:
    """Remove the entry of ``<opd>/<node>``; return True when there was one."""
    nodes = read_node_entries(path)
    if nodes.pop(f"{opd}/{node}", None) is None:
        return False
    write_private_json(path, {"nodes": nodes})
    return True
