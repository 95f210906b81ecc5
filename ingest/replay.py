"""Replay of dead letters: publish each payload again to its topic, then delete the accepted entries.

The replay client speaks MQTT 5, because only an MQTT 5 PUBACK reports what the broker did
with the message. Mosquitto 2.0.11 acknowledges a QoS 1 PUBLISH that its access rules deny
and drops it. Under MQTT 3.1.1 that PUBACK looks like a success. Under MQTT 5 it carries
reason code 0x87 (Not authorized).

An entry is deleted only after a PUBACK with reason code 0x00 (Success). Every other outcome
keeps the entry and reports it as failed with the reason:

* 0x87 (Not authorized): the login may not publish to the topic, and the broker dropped
  the message.
* 0x10 (No matching subscribers): the broker accepted the message and dropped it, because
  no session subscribes to the topic. The ingest service keeps a persistent session, so
  while that session exists the broker queues messages for it even when it is offline and
  responds with 0x00. A 0x10 therefore means that nothing will store the message.
* Any other reason code, no PUBACK in time, or a topic that paho rejects before sending.

NOTE: 0x00 means that at least one session subscribes to the topic, not that the ingest
service does. The API's live view subscribes to the telemetry streams, so while it runs, a
replay with no ingest session at all still gets 0x00.
"""

import logging
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from .dead_letters import DeadLetter, DeadLetterStore

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 10.0
"""Maximum wait for the broker's CONNACK, s."""

_PUBLISH_TIMEOUT_S = 10.0
"""Maximum wait for the PUBACKs of one batch, counted from its last PUBLISH, s."""

_BATCH_SIZE = 1_000
"""Entries published before waiting for their PUBACKs.

Packet ids are 16 bits wide and paho reuses them after 65,535 publishes, so a batch must stay
well below that for each PUBACK to match one entry.
"""

ACCEPTED_REASON_CODES = frozenset({0x00})
"""PUBACK reason codes after which an entry is deleted: 0x00 (Success) only."""

_REASON_HINTS = {
    0x10: "no session subscribes to the topic, so the broker dropped the message; start the ingest service "
    "and replay again",
    0x87: "the broker's access rules forbid this login to publish to the topic, so the broker dropped the "
    "message; replay with the API's login",
}


class ReplayError(RuntimeError):
    """Raised when the broker cannot be reached or rejects the login; nothing was deleted."""


@dataclass(slots=True)
class ReplayResult:
    """Ids of the entries published again and deleted, and of those kept, with the reason."""

    replayed: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def describe_reason_code(reason_code: ReasonCode) -> str:
    """Return a reason code as its MQTT 5 name and value, e.g. ``not authorized (0x87)``, with a hint."""
    text = f"{reason_code.getName().lower()} (0x{reason_code.value:02x})"
    hint = _REASON_HINTS.get(reason_code.value)
    return f"{text}: {hint}" if hint else text


class _PubackRecorder:
    """PUBACK reason codes by packet id, written by paho's network thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason_codes: dict[int, ReasonCode] = {}

    def on_publish(self, client, userdata, mid: int, reason_code: ReasonCode, properties) -> None:
        # paho 2.2 calls on_publish before it marks the message as published, so the reason
        # code is here once wait_for_publish returns.
        with self._lock:
            self._reason_codes[mid] = reason_code

    def pop(self, mid: int) -> ReasonCode | None:
        with self._lock:
            return self._reason_codes.pop(mid, None)


def replay(
    store: DeadLetterStore,
    entries: list[DeadLetter],
    host: str,
    port: int,
    username: str | None = None,
    password: str | None = None,
) -> ReplayResult:
    """Publish ``entries`` at QoS 1 over MQTT 5 and delete each one the broker accepted with reason code 0x00.

    Entries are published in batches of ``_BATCH_SIZE``, and each batch's accepted entries are
    deleted before the next batch starts. An entry that fails validation again comes back
    into the store as a new entry. When a batch times out, the remaining entries are kept
    and reported as not attempted.

    Raises:
        ReplayError: the broker could not be reached or rejected the login; nothing was deleted.
    """
    logger.info("replaying %d dead letters to %s:%d as %s", len(entries), host, port, username or "anonymous")
    client, recorder = _connect(host, port, username, password)

    result = ReplayResult()
    try:
        for start in range(0, len(entries), _BATCH_SIZE):
            batch = entries[start : start + _BATCH_SIZE]
            accepted, timed_out = _publish_batch(client, recorder, batch, result)
            store.delete(accepted)
            result.replayed.extend(accepted)
            if timed_out:
                for entry in entries[start + _BATCH_SIZE :]:
                    result.failed[entry.id] = "not attempted: an earlier PUBACK timed out"
                break
    finally:
        client.disconnect()
        client.loop_stop()

    _log_result(result)
    return result


def _connect(host: str, port: int, username: str | None, password: str | None) -> tuple[mqtt.Client, _PubackRecorder]:
    """Connect an MQTT 5 client and wait for a successful CONNACK.

    Raises:
        ReplayError: no TCP connection, no CONNACK in time, or a CONNACK with a failure code.
    """
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"smartoffice-replay-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    if username:
        client.username_pw_set(username, password)
    recorder = _PubackRecorder()
    client.on_publish = recorder.on_publish

    connack: list[ReasonCode] = []
    connected = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        connack.append(reason_code)
        connected.set()

    client.on_connect = on_connect

    try:
        client.connect(host, port)
    except OSError as exc:
        raise ReplayError(f"cannot reach the broker at {host}:{port}: {exc}") from None
    client.loop_start()

    if not connected.wait(_CONNECT_TIMEOUT_S):
        _stop(client)
        raise ReplayError(f"no CONNACK from the broker at {host}:{port} within {_CONNECT_TIMEOUT_S:.0f} s")
    if connack[0].is_failure:
        _stop(client)
        raise ReplayError(
            f"the broker at {host}:{port} rejected the login {username or 'anonymous'!r}: "
            f"{describe_reason_code(connack[0])}. Check SMARTOFFICE_MQTT_USERNAME and the password setting"
        )
    return client, recorder


def _stop(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def _publish_batch(
    client: mqtt.Client, recorder: _PubackRecorder, batch: list[DeadLetter], result: ReplayResult
) -> tuple[list[int], bool]:
    """Publish one batch and wait for its PUBACKs.

    Failed entries go to ``result.failed``. Returns the ids the broker accepted, and whether
    a PUBACK timed out.
    """
    pending: list[tuple[DeadLetter, mqtt.MQTTMessageInfo]] = []
    for entry in batch:
        try:
            info = client.publish(entry.topic, entry.payload, qos=1)
        except ValueError as exc:
            # paho raises before sending for an empty topic or one with wildcards.
            result.failed[entry.id] = f"not published: {exc}"
            continue
        pending.append((entry, info))

    accepted: list[int] = []
    timed_out = False
    deadline = time.monotonic() + _PUBLISH_TIMEOUT_S
    for entry, info in pending:
        try:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        except (ValueError, RuntimeError) as exc:
            result.failed[entry.id] = f"not published: {exc}"
            continue
        if not info.is_published():
            result.failed[entry.id] = f"no PUBACK within {_PUBLISH_TIMEOUT_S:.0f} s"
            timed_out = True
            continue

        reason_code = recorder.pop(info.mid)
        if reason_code is None:
            result.failed[entry.id] = "PUBACK without a reason code"
        elif reason_code.value in ACCEPTED_REASON_CODES:
            accepted.append(entry.id)
        else:
            result.failed[entry.id] = describe_reason_code(reason_code)
    return accepted, timed_out


def _log_result(result: ReplayResult) -> None:
    """Log the totals, and each distinct failure once with its count and first ids."""
    logger.info("replayed %d dead letters, %d failed", len(result.replayed), len(result.failed))
    ids_by_reason: dict[str, list[int]] = defaultdict(list)
    for entry_id, reason in result.failed.items():
        ids_by_reason[reason].append(entry_id)
    for reason, ids in ids_by_reason.items():
        logger.warning("%d dead letters kept: %s (ids %s)", len(ids), reason, ", ".join(map(str, ids[:10])))
