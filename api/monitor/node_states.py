"""Last known status and configuration report of each edge node, kept in the registry."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from registry.db import transaction
from registry.models import NodeConfigVersion, NodeState

STATUS_FIELDS = ("sw_version", "uptime_s", "queue_depth", "dropped_total", "config_version", "device_last_seen")
"""Status message fields kept as the node's newest status."""


class NodeStateStore:
    """Rows of ``node_states``, one per node that ever sent a status or configuration report."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def record_status(self, opd: str, node: str, state: str, ts_ms: int | None, received_ms: int, fields: dict) -> None:
        """Store a status message; the state's start time changes only when the state does."""
        with transaction(self.sessions) as session:
            row = self._row(session, opd, node)
            if row.state != state:
                row.state = state
                row.state_since_ms = ts_ms if ts_ms is not None else received_ms
            row.last_seen_ms = max(row.last_seen_ms or 0, received_ms)
            kept = {name: fields[name] for name in STATUS_FIELDS if fields.get(name) is not None}
            if state == "online" or not row.status:
                row.status = kept
            else:
                # A last will carries only the state: keep the newest heartbeat's details.
                row.status = {**row.status, **kept}

    def record_report(self, opd: str, node: str, version: int, result: str, error: str | None, ts_ms: int) -> None:
        """Store a node's report on one configuration version; an older version's report is ignored."""
        with transaction(self.sessions) as session:
            row = self._row(session, opd, node)
            if row.reported_version is not None and version < row.reported_version:
                return
            row.reported_version = version
            row.reported_result = result
            row.reported_error = error
            row.reported_at_ms = ts_ms

    def all(self, opds: list[str] | None = None) -> list[NodeState]:
        """Return every node state, optionally of some OPDs only."""
        statement = select(NodeState).order_by(NodeState.opd_key, NodeState.node_key)
        if opds is not None:
            statement = statement.where(NodeState.opd_key.in_(opds))
        with self.sessions() as session:
            return list(session.scalars(statement))

    def get(self, opd: str, node: str) -> NodeState | None:
        """Return one node's state, or None if it never reported."""
        with self.sessions() as session:
            return session.scalars(select(NodeState).where(NodeState.opd_key == opd, NodeState.node_key == node)).first()

    @staticmethod
    def _row(session: Session, opd: str, node: str) -> NodeState:
        row = session.scalars(select(NodeState).where(NodeState.opd_key == opd, NodeState.node_key == node)).first()
        if row is None:
            row = NodeState(opd_key=opd, node_key=node, state="unknown")
            session.add(row)
        return row


class NodeConfigStore:
    """Desired configurations of nodes, one row per version."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def latest(self, opd: str, node: str) -> NodeConfigVersion | None:
        """Return the newest desired configuration of a node, or None."""
        statement = (
            select(NodeConfigVersion)
            .where(NodeConfigVersion.opd_key == opd, NodeConfigVersion.node_key == node)
            .order_by(NodeConfigVersion.version.desc())
        )
        with self.sessions() as session:
            return session.scalars(statement).first()

    def latest_versions(self) -> dict[tuple[str, str], int]:
        """Return the newest desired version of every node that has one."""
        statement = select(NodeConfigVersion.opd_key, NodeConfigVersion.node_key, func.max(NodeConfigVersion.version)).group_by(
            NodeConfigVersion.opd_key, NodeConfigVersion.node_key
        )
        with self.sessions() as session:
            return {(opd, node): version for opd, node, version in session.execute(statement)}

    def add(self, opd: str, node: str, settings: dict, issued_by: str, issued_ms: int) -> NodeConfigVersion:
        """Store ``settings`` as the node's next version and return it."""
        with transaction(self.sessions) as session:
            current = session.scalars(
                select(NodeConfigVersion)
                .where(NodeConfigVersion.opd_key == opd, NodeConfigVersion.node_key == node)
                .order_by(NodeConfigVersion.version.desc())
            ).first()
            row = NodeConfigVersion(
                opd_key=opd,
                node_key=node,
                version=(current.version + 1) if current else 1,
                settings=settings,
                issued_at_ms=issued_ms,
                issued_by=issued_by,
            )
            session.add(row)
            session.flush()
            return row
