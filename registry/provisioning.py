"""Provision and revoke the broker identity of an edge node, on the running broker.

Provisioning generates a random password, gives the node a dynsec client and role on the
broker (``registry.broker_acl`` lists what the role allows), and stores only an argon2 hash
of the password in the registry. The caller receives the password once and cannot read it
back later. Provisioning a node again rotates its password, and the broker disconnects the
connections made with the old one.

Revoking disables the node's dynsec client: the broker rejects its next CONNECT with "Not
authorized" and disconnects its current connection at once. The registry keeps the user
name and the revocation time, and provisioning the node again makes it usable.

Both functions change the broker first and the registry session after. Call them inside a
transaction: when the broker fails, nothing is written. When the commit fails after the
broker changed, the broker and the registry disagree until the same call succeeds.

Exceptions::

    ProvisioningError
    ├── NodeNotFoundError          the registry has no such node
    ├── NodeNotProvisionedError    revoke of a node that never had broker credentials
    └── ClientIdConflictError      two nodes would share one pinned client id

Errors of the broker connection are ``registry.dynsec.DynsecError``.
"""

import logging
import time
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from .broker_acl import node_acls, node_client_id, node_username
from .broker_bootstrap import generate_password
from .dynsec import CLIENT_NOT_FOUND, DynsecClient, DynsecCommandError
from .models import AuditEntry, Node, Opd

logger = logging.getLogger(__name__)

_HASHER = PasswordHasher()


class ProvisioningError(RuntimeError):
    """Base of the errors of provisioning and revocation."""


class NodeNotFoundError(ProvisioningError):
    """Raised when the registry has no node ``<opd>/<node>``."""

    def __init__(self, opd: str, node: str) -> None:
        super().__init__(
            f"node {opd}/{node} is not in the registry; add it to the catalogue and run 'smartoffice-registry seed'"
        )
        self.opd = opd
        self.node = node


class NodeNotProvisionedError(ProvisioningError):
    """Raised when a node to revoke has never been provisioned."""

    def __init__(self, opd: str, node: str) -> None:
        super().__init__(f"node {opd}/{node} has no broker credentials to revoke; it was never provisioned")
        self.opd = opd
        self.node = node


class ClientIdConflictError(ProvisioningError):
    """Raised when another node of the registry maps to the same pinned client id."""


@dataclass(frozen=True, slots=True)
class NodeCredentials:
    """Login of a node, shown once and never stored in plain text."""

    opd: str
    node: str
    username: str
    password: str = field(repr=False)
    client_id: str
    """The only client id the broker accepts for this user name."""


def now_ms() -> int:
    """Return the current UTC time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def find_node(session: Session, opd: str, node: str) -> Node:
    """Return the registry row of ``<opd>/<node>``.

    Raises:
        NodeNotFoundError: no such node.
    """
    row = session.scalar(select(Node).join(Opd).where(Opd.key == opd, Node.key == node))
    if row is None:
        raise NodeNotFoundError(opd, node)
    return row


def _check_client_id_unique(session: Session, opd: str, node: str, client_id: str) -> None:
    rows = session.execute(select(Opd.key, Node.key).join(Node.opd)).all()
    for other_opd, other_node in rows:
        if (other_opd, other_node) != (opd, node) and node_client_id(other_opd, other_node) == client_id:
            raise ClientIdConflictError(
                f"nodes {opd}/{node} and {other_opd}/{other_node} both map to client id {client_id!r}. "
                "Rename one of them in the catalogue"
            )


def _apply_broker_identity(dynsec: DynsecClient, opd: str, node: str, password: str) -> bool:
    """Create or update the node's role and client on the broker. Return True when the client existed."""
    username = node_username(opd, node)
    client_id = node_client_id(opd, node)
    dynsec.ensure_role(username, node_acls(opd, node))

    existing = dynsec.get_client(username)
    if existing is None:
        dynsec.create_client(username, password, [username], clientid=client_id, text_name=f"edge node {opd}/{node}")
        return False

    # Setting the password disconnects every connection made with the old one.
    dynsec.set_client_password(username, password)
    if existing.get("clientid") != client_id:
        dynsec.set_client_id(username, client_id)
    if username not in {role.get("rolename") for role in existing.get("roles", [])}:
        dynsec.add_client_role(username, username)
    if existing.get("disabled"):
        dynsec.enable_client(username)
    return True


def provision_node(
    session: Session, dynsec: DynsecClient, opd: str, node: str, actor: str, at_ms: int | None = None
) -> NodeCredentials:
    """Give ``<opd>/<node>`` a new broker password and return its credentials.

    The node's role and client are created on the broker, or updated when they exist. A
    revoked node becomes usable again. ``actor`` names who asked, for the audit log.

    Raises:
        NodeNotFoundError, ClientIdConflictError: nothing was changed.
        registry.dynsec.DynsecError: the broker failed; some broker changes may be done.
    """
    row = find_node(session, opd, node)
    username = node_username(opd, node)
    client_id = node_client_id(opd, node)
    _check_client_id_unique(session, opd, node, client_id)

    password = generate_password()
    password_hash = _HASHER.hash(password)
    rotated = _apply_broker_identity(dynsec, opd, node, password)

    at_ms = now_ms() if at_ms is None else at_ms
    was_revoked = row.revoked_at_ms is not None
    row.mqtt_username = username
    row.password_hash = password_hash
    row.provisioned_at_ms = at_ms
    row.revoked_at_ms = None
    session.add(
        AuditEntry(
            ts_ms=at_ms,
            actor=actor,
            action="node.provision",
            target=f"{opd}/{node}",
            detail={"username": username, "client_id": client_id, "rotated": rotated, "was_revoked": was_revoked},
        )
    )
    session.flush()
    logger.info(
        "provisioned node %s/%s as broker client %s (client id %s, password %s)",
        opd, node, username, client_id, "rotated" if rotated else "created",
    )
    return NodeCredentials(opd=opd, node=node, username=username, password=password, client_id=client_id)


def revoke_node(
    session: Session, dynsec: DynsecClient, opd: str, node: str, actor: str, at_ms: int | None = None
) -> Node:
    """Disable the broker identity of ``<opd>/<node>``, mark it revoked and return the registry row.

    The broker disconnects the node at once and rejects its next connections. Revoking a
    revoked node again keeps the first revocation time.

    Raises:
        NodeNotFoundError, NodeNotProvisionedError: nothing was changed.
        registry.dynsec.DynsecError: the broker failed; the registry is unchanged.
    """
    row = find_node(session, opd, node)
    if row.mqtt_username is None:
        raise NodeNotProvisionedError(opd, node)

    try:
        dynsec.disable_client(row.mqtt_username)
    except DynsecCommandError as exc:
        if exc.error != CLIENT_NOT_FOUND:
            raise
        # The broker never had this client (e.g. a new plugin file), so it already rejects it.
        logger.warning(
            "node %s/%s: broker client %s not found, marking the node revoked anyway", opd, node, row.mqtt_username
        )

    at_ms = now_ms() if at_ms is None else at_ms
    if row.revoked_at_ms is None:
        row.revoked_at_ms = at_ms
    row.password_hash = None
    session.add(
        AuditEntry(
            ts_ms=at_ms, actor=actor, action="node.revoke", target=f"{opd}/{node}", detail={"username": row.mqtt_username}
        )
    )
    session.flush()
    logger.info("revoked node %s/%s: broker client %s disabled and disconnected", opd, node, row.mqtt_username)
    return row
