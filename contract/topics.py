"""MQTT topic tree of wire contract v1: ``smartoffice/v1/<opd>/<node>/<stream>``.

Streams:

* ``attendance``, ``energy``, ``room``: telemetry from the node's devices, QoS 1, not retained.
* ``status``: the node's state, retained; the node's last will sets it to offline.
* ``config``: desired configuration, retained, published by the command server.
* ``config/reported``: the configuration the node applied or rejected, published by the node.
"""

from dataclasses import dataclass
from enum import StrEnum

from .ids import id_problem

TOPIC_ROOT = "smartoffice/v1"
"""First two levels of every topic; the second is the contract's major version."""


class Stream(StrEnum):
    """Last level(s) of a topic: what kind of message the topic carries."""

    ATTENDANCE = "attendance"
    ENERGY = "energy"
    ROOM = "room"
    STATUS = "status"
    CONFIG = "config"
    CONFIG_REPORTED = "config/reported"


TELEMETRY_STREAMS = (Stream.ATTENDANCE, Stream.ENERGY, Stream.ROOM)
"""Streams whose messages are device readings or events, stored as time series."""

RETAINED_STREAMS = frozenset({Stream.STATUS, Stream.CONFIG})
"""Streams published with the retain flag set."""


class TopicError(ValueError):
    """Raised when a topic is not part of the contract's tree."""


@dataclass(frozen=True, slots=True)
class TopicParts:
    """The parts of a parsed topic."""

    opd: str
    node: str
    stream: Stream


def build_topic(opd: str, node: str, stream: Stream | str) -> str:
    """Build the topic of ``stream`` for one node, after checking both ids."""
    for name, value in (("opd", opd), ("node", node)):
        problem = id_problem(value)
        if problem:
            raise TopicError(f"{name}: {problem}")

    return f"{TOPIC_ROOT}/{opd}/{node}/{Stream(stream).value}"


def parse_topic(topic: str) -> TopicParts:
    """Split a topic into its OPD, node and stream.

    Raises:
        TopicError: the topic is outside ``smartoffice/v1/``, has an invalid id or an
            unknown stream. The message names the topic and the part at fault.
    """
    prefix = TOPIC_ROOT + "/"
    if not topic.startswith(prefix):
        raise TopicError(f"topic {topic!r} is outside the contract tree: it must start with {prefix!r}")

    levels = topic[len(prefix):].split("/", 2)
    if len(levels) != 3:
        raise TopicError(f"topic {topic!r} must have the form {prefix}<opd>/<node>/<stream>")

    opd, node, stream_text = levels
    for name, value in (("opd", opd), ("node", node)):
        problem = id_problem(value)
        if problem:
            raise TopicError(f"topic {topic!r}: {name} {problem}")

    try:
        stream = Stream(stream_text)
    except ValueError:
        known = ", ".join(s.value for s in Stream)
        raise TopicError(f"topic {topic!r}: unknown stream {stream_text!r}, expected one of {known}") from None

    return TopicParts(opd=opd, node=node, stream=stream)


def stream_filter(stream: Stream | str, opd: str = "+", node: str = "+") -> str:
    """Return a subscription filter for one stream, for all OPDs and nodes by default."""
    return f"{TOPIC_ROOT}/{opd}/{node}/{Stream(stream).value}"


def shared_filter(group: str, topic_filter: str) -> str:
    """Return the MQTT 5 shared-subscription form ``$share/<group>/<filter>``."""
    problem = id_problem(group)
    if problem:
        raise TopicError(f"shared subscription group: {problem}")

    return f"$share/{group}/{topic_filter}"
