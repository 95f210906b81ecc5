"""Broker identities and their access rules, as roles of Mosquitto's dynamic security plugin.

Each identity is a dynsec client with one role of the same name. A role is a list of ACLs
(``acltype``, ``topic``, ``allow``), and everything no ACL allows is denied. The plugin's
``defaultACLAccess`` denies publishing, subscribing and receiving, so a client gets only what
its role lists (see ``DEFAULT_ACL_ACCESS``).

* Node ``<opd>/<node>``: publishes its telemetry, its retained ``status`` (and its last
  will there) and ``config/reported`` under ``smartoffice/v1/<opd>/<node>/``. It subscribes
  to, and receives, only its own ``config``. Its client id is pinned (see ``node_client_id``).
* Ingest: subscribes to ``smartoffice/v1/#``, also in shared groups, and publishes nothing.
* API: subscribes to the telemetry, ``status`` and ``config/reported`` of every node (live
  view, node states), publishes retained ``config`` and replays of telemetry dead letters.
* Admin: sends commands to the plugin's control topic ``$CONTROL/dynamic-security/v1``.
"""

from dataclasses import dataclass

from contract import TELEMETRY_STREAMS, TOPIC_ROOT, Stream, build_topic, id_problem, stream_filter

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
"""Topic the dynsec plugin reads commands from."""

CONTROL_RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
"""Topic the dynsec plugin publishes its responses on."""

ADMIN_USERNAME = "smartoffice-admin"
INGEST_USERNAME = "smartoffice-ingest"
API_USERNAME = "smartoffice-api"

DEFAULT_ACL_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
"""Access of a client when no ACL of its role matches.

Receiving is denied as well as sending: Mosquitto 2.0.11 lets a client that connects with
another client's id take over that client's persistent session, with its queued messages.
With receiving denied, such a client gets only messages its own role lets it read.
"""

NODE_PUBLISHED_STREAMS = (*TELEMETRY_STREAMS, Stream.STATUS, Stream.CONFIG_REPORTED)
"""Streams a node publishes on its own topics."""

API_SUBSCRIBED_STREAMS = (*TELEMETRY_STREAMS, Stream.STATUS, Stream.CONFIG_REPORTED)
"""Streams the API reads from every node."""

API_PUBLISHED_STREAMS = (*TELEMETRY_STREAMS, Stream.CONFIG)
"""Streams the API publishes: desired configurations, and telemetry replayed from dead letters."""


@dataclass(frozen=True, slots=True)
class Acl:
    """One dynsec ACL: what kind of access, on which topic or filter, allowed or denied."""

    acltype: str
    """``publishClientSend``, ``publishClientReceive``, ``subscribeLiteral``, ``subscribePattern``,
    ``unsubscribeLiteral`` or ``unsubscribePattern``."""
    topic: str
    allow: bool = True

    def as_json(self) -> dict:
        """Return the ACL in the form of the dynsec JSON file and control API."""
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow}


def _check_ids(opd: str, node: str) -> None:
    for name, value in (("opd", opd), ("node", node)):
        problem = id_problem(value)
        if problem:
            raise ValueError(f"{name}: {problem}")


def node_username(opd: str, node: str) -> str:
    """Return the broker user name of a node, ``node.<opd>.<node>``.

    Ids never contain ``.``, so every user name maps back to exactly one node. With ``-`` as
    separator, ``a-b``/``c`` and ``a``/``b-c`` would share one name.
    """
    _check_ids(opd, node)
    return f"node.{opd}.{node}"


def node_client_id(opd: str, node: str) -> str:
    """Return the only MQTT client id the broker accepts from a node, ``edge-<opd>-<node>``.

    It is the edge agent's default client id. Pinning it stops a node from connecting with
    the client id of the ingest service or of another node, which would disconnect that
    client and take over its session.
    """
    _check_ids(opd, node)
    return f"edge-{opd}-{node}"


def node_acls(opd: str, node: str) -> list[Acl]:
    """Return the ACLs of one node's role."""
    _check_ids(opd, node)
    acls = [Acl("publishClientSend", build_topic(opd, node, stream)) for stream in NODE_PUBLISHED_STREAMS]
    config_topic = build_topic(opd, node, Stream.CONFIG)
    acls.append(Acl("subscribeLiteral", config_topic))
    acls.append(Acl("publishClientReceive", config_topic))
    return acls


def ingest_acls() -> list[Acl]:
    """Return the ACLs of the ingest service: read every contract topic, publish nothing."""
    everything = f"{TOPIC_ROOT}/#"
    return [
        Acl("subscribePattern", everything),
        # Mosquitto 2.0.11 checks a shared subscription against its whole filter,
        # $share/<group>/<filter>, so the group level needs a rule of its own.
        Acl("subscribePattern", f"$share/+/{everything}"),
        Acl("publishClientReceive", everything),
    ]


def api_acls() -> list[Acl]:
    """Return the ACLs of the API service."""
    acls = []
    for stream in API_SUBSCRIBED_STREAMS:
        acls.append(Acl("subscribePattern", stream_filter(stream)))
        acls.append(Acl("publishClientReceive", stream_filter(stream)))
    for stream in API_PUBLISHED_STREAMS:
        acls.append(Acl("publishClientSend", stream_filter(stream)))
    return acls


def admin_acls() -> list[Acl]:
    """Return the ACLs of the dynsec administrator: the control topics only, no device data."""
    control = "$CONTROL/dynamic-security/#"
    return [
        Acl("publishClientSend", control),
        Acl("subscribePattern", control),
        Acl("publishClientReceive", control),
    ]
