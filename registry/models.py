"""Tables of the registry (SQLAlchemy 2 declarative models).

Ids that appear on the wire (OPD, room, node, device) are kept as the contract's text ids,
unique within their OPD; every table also has an integer primary key for foreign keys.
Times are UTC epoch milliseconds in ``BigInteger`` columns, like the wire contract, so SQLite
and PostgreSQL store them the same way.
"""

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Base of every registry table."""


class Opd(Base):
    """A government office (organisasi perangkat daerah)."""

    __tablename__ = "opds"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    island: Mapped[str | None] = mapped_column(String(100))
    town: Mapped[str | None] = mapped_column(String(100))
    employees: Mapped[int | None] = mapped_column(Integer)

    rooms: Mapped[list["Room"]] = relationship(back_populates="opd", cascade="all, delete-orphan")
    nodes: Mapped[list["Node"]] = relationship(back_populates="opd", cascade="all, delete-orphan")


class Room(Base):
    """A room of an OPD office."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("opd_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opd_id: Mapped[int] = mapped_column(ForeignKey("opds.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))

    opd: Mapped[Opd] = relationship(back_populates="rooms")


class Node(Base):
    """An edge node (gateway) of an office, with its MQTT identity."""

    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("opd_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opd_id: Mapped[int] = mapped_column(ForeignKey("opds.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    mqtt_username: Mapped[str | None] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    """Argon2 hash for the API's records; the broker keeps its own hash in its dynamic security file."""

    provisioned_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at_ms: Mapped[int | None] = mapped_column(BigInteger)

    opd: Mapped[Opd] = relationship(back_populates="nodes")
    devices: Mapped[list["Device"]] = relationship(back_populates="node", cascade="all, delete-orphan")


class Device(Base):
    """A physical device behind an edge node."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("opd_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opd_id: Mapped[int] = mapped_column(ForeignKey("opds.id", ondelete="CASCADE"))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    room_key: Mapped[str | None] = mapped_column(String(64))
    circuit: Mapped[str | None] = mapped_column(String(64))

    node: Mapped[Node] = relationship(back_populates="devices")


class User(Base):
    """A person who logs in to the command server."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(300))
    opds: Mapped[list[str] | None] = mapped_column(JSON)
    """OPD keys a facility manager may see; None means every OPD (admin, leadership)."""

    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class ApiToken(Base):
    """A long-lived token for an integration, stored only as a hash."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(150))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    """SHA-256 of the token; the token has enough entropy that a slow hash is not needed."""

    role: Mapped[str] = mapped_column(String(40))
    opds: Mapped[list[str] | None] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(150))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at_ms: Mapped[int | None] = mapped_column(BigInteger)


class Employee(Base):
    """The link between an attendance pseudonym and the person; personal data."""

    __tablename__ = "employees"
    __table_args__ = (UniqueConstraint("opd_id", "pseudonym"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opd_id: Mapped[int] = mapped_column(ForeignKey("opds.id", ondelete="CASCADE"))
    pseudonym: Mapped[str] = mapped_column(String(64))
    nip: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))


class AuditEntry(Base):
    """Audit record of one view of personal data or one change of configuration: actor, action, time."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_ts", "ts_ms"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(80))
    target: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict | None] = mapped_column(JSON)


class NodeConfigVersion(Base):
    """One desired configuration of a node; versions only grow."""

    __tablename__ = "node_configs"
    __table_args__ = (UniqueConstraint("opd_key", "node_key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opd_key: Mapped[str] = mapped_column(String(64))
    node_key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict] = mapped_column(JSON)
    issued_at_ms: Mapped[int] = mapped_column(BigInteger)
    issued_by: Mapped[str] = mapped_column(String(150))


class NodeState(Base):
    """Last known status and configuration report of a node, from its MQTT streams."""

    __tablename__ = "node_states"
    __table_args__ = (UniqueConstraint("opd_key", "node_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opd_key: Mapped[str] = mapped_column(String(64))
    node_key: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default="unknown")
    state_since_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_seen_ms: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[dict | None] = mapped_column(JSON)
    """The newest status message as received (sw_version, uptime_s, queue_depth, ...)."""

    reported_version: Mapped[int | None] = mapped_column(Integer)
    reported_result: Mapped[str | None] = mapped_column(String(20))
    reported_error: Mapped[str | None] = mapped_column(Text)
    reported_at_ms: Mapped[int | None] = mapped_column(BigInteger)


class Alert(Base):
    """A condition that needs attention: open from ``started_at_ms`` until ``ended_at_ms``."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_open", "state", "opd_key"),
        Index("ix_alerts_subject", "opd_key", "kind", "subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    opd_key: Mapped[str] = mapped_column(String(64))
    node_key: Mapped[str | None] = mapped_column(String(64))
    device_key: Mapped[str | None] = mapped_column(String(64))
    room_key: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    """Key of the device, room or node the alert is about; one open alert per kind and subject."""

    severity: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    value: Mapped[float | None] = mapped_column(Float)
    peak_value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    started_at_ms: Mapped[int] = mapped_column(BigInteger)
    ended_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_by: Mapped[str | None] = mapped_column(String(150))
    acknowledged_at_ms: Mapped[int | None] = mapped_column(BigInteger)
