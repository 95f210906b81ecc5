"""Replay of dead letters: publish each payload again to its topic, then delete the entry."""

import logging
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from .dead_letters import DeadLetter, DeadLetterStore

logger = logging.getLogger(__name__)

_PUBLISH_TIMEOUT_S = 10.0


class ReplayError(RuntimeError):
    """Raised when the broker cannot be reached for a replay."""


@dataclass(slots=True)
class ReplayResult:
    """Ids of the entries published again (and deleted), and of those that failed with the reason."""

    replayed: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def replay(
    store: DeadLetterStore,
    entries: list[DeadLetter],
    host: str,
    port: int,
    username: str | None = None,
    password: str | None = None,
) -> ReplayResult:
    """Publish ``entries`` at QoS 1 and delete each one the broker acknowledged.

    An entry that fails validation again comes back into the store as a new entry.

    Raises:
        ReplayError: the broker refused or could not be reached; nothing was deleted.
    """
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"smartoffice-replay-{uuid.uuid4().hex[:8]}")
    if username:
        client.username_pw_set(username, password)
    try:
        client.connect(host, port)
    except OSError as exc:
        raise ReplayError(f"cannot reach the broker at {host}:{port}: {exc}") from None

    result = ReplayResult()
    client.loop_start()
    try:
        published = [(entry, client.publish(entry.topic, entry.payload, qos=1)) for entry in entries]
        for entry, info in published:
            try:
                info.wait_for_publish(_PUBLISH_TIMEOUT_S)
            except (ValueError, RuntimeError) as exc:
                result.failed[entry.id] = str(exc)
                continue
            if info.is_published():
                result.replayed.append(entry.id)
            else:
                result.failed[entry.id] = f"no PUBACK within {_PUBLISH_TIMEOUT_S:.0f} s"
    finally:
        client.disconnect()
        client.loop_stop()

    store.delete(result.replayed)
    logger.info("replayed %d dead letters, %d failed", len(result.replayed), len(result.failed))
    return result
