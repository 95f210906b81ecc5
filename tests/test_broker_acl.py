"""Access rules of the broker, checked against a real Mosquitto 2 with the dynamic security plugin.

Three nodes are provisioned: A and B of one OPD, C of another. A message the broker drops
is proven absent by a marker: the sender publishes the forbidden message, then an allowed
one, and Mosquitto handles one connection's packets in order and delivers them to one
subscriber in order. Once the marker arrives, the forbidden message would have arrived before it.

Seen with Mosquitto 2.0.11: a denied QoS 1 PUBLISH is still acknowledged with a plain PUBACK
in MQTT 3.1.1, and with reason code 0x87 (Not authorized) in MQTT 5. A denied SUBSCRIBE gets
0x80 in MQTT 3.1.1 and 0x87 in MQTT 5. A last will on a forbidden topic is accepted at
CONNECT and dropped when the broker would publish it.
"""

import uuid
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from contract import Stream, build_topic
from registry.broker_acl import NODE_PUBLISHED_STREAMS
from registry.db import make_engine, session_factory, transaction
from registry.provisioning import NodeCredentials, provision_node

from broker_helpers import Probe, SecureBroker, connect_probe, make_registry, start_secure_broker

pytestmark = pytest.mark.integration

NODE_A = ("kominfo", "gw-01")
NODE_B = ("kominfo", "gw-02")
NODE_C = ("dinkes", "gw-01")

NOT_AUTHORIZED = 0x87
SUBACK_FAILURE_MQTT311 = 0x80


@dataclass
class AclSetup:
    broker: SecureBroker
    credentials: dict[tuple[str, str], NodeCredentials]


@pytest.fixture(scope="module")
def acl(tmp_path_factory) -> AclSetup:
    folder = tmp_path_factory.mktemp("broker-acl")
    broker = start_secure_broker(folder)
    url = make_registry(folder / "registry.sqlite3", [NODE_A, NODE_B, NODE_C])
    engine = make_engine(url)
    credentials = {}
    with broker.admin() as dynsec, transaction(session_factory(engine)) as session:
        for opd, node in (NODE_A, NODE_B, NODE_C):
            credentials[(opd, node)] = provision_node(session, dynsec, opd, node, actor="test")
    engine.dispose()
    yield AclSetup(broker, credentials)
    broker.server.stop()


@pytest.fixture
def probes():
    """Probes opened by the test, closed at its end."""
    opened: list[Probe] = []
    yield opened
    for probe in opened:
        probe.close()


@pytest.fixture
def connect(acl, probes):
    """Connect as a node key, a service name (``ingest``, ``api``, ``admin``) or anonymously (None)."""

    def _connect(who, protocol=mqtt.MQTTv5, client_id=None, will_topic=None, expect_success=True) -> Probe:
        if who is None:
            username, password = None, None
        elif isinstance(who, tuple):
            entry = acl.credentials[who]
            username, password, client_id = entry.username, entry.password, client_id or entry.client_id
        else:
            service = getattr(acl.broker.identities, who)
            username, password = service.username, service.password
        probe = connect_probe(
            acl.broker.port, username, password, client_id=client_id, protocol=protocol, will_topic=will_topic
        )
        probes.append(probe)
        if expect_success:
            assert not probe.connack.is_failure, f"{who} was rejected: {probe.connack}"
        return probe

    return _connect


@pytest.fixture
def ingest(connect) -> Probe:
    """The ingest identity, subscribed to the whole contract tree."""
    probe = connect("ingest")
    assert not probe.subscribe("smartoffice/v1/#").is_failure
    return probe


def _topic(node: tuple[str, str], stream: Stream) -> str:
    return build_topic(node[0], node[1], stream)


def _unique_payload(kind: str) -> bytes:
    """Return a payload no other test sends, so retained leftovers cannot be mistaken for it."""
    return f'{{"{kind}":"{uuid.uuid4().hex}"}}'.encode()


def _wait_for_payload(subscriber: Probe, topic: str, payload: bytes) -> None:
    subscriber.wait(lambda: payload in subscriber.payloads(topic), f"{payload!r} on {topic}")


def _publish_then_marker(
    sender: Probe, subscriber: Probe, topic: str, marker_topic: str, publisher: Probe | None = None
):
    """Publish a unique payload on ``topic`` (by ``publisher``, default ``sender``), then a marker by ``sender``.

    Returns the PUBACK reason code of the first message and whether ``subscriber`` received it.
    """
    payload = _unique_payload("probe")
    marker = _unique_payload("marker")
    reason = (publisher or sender).publish(topic, payload)
    sender.publish(marker_topic, marker)
    _wait_for_payload(subscriber, marker_topic, marker)
    return reason, payload in subscriber.payloads(topic)


# --- Nodes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", NODE_PUBLISHED_STREAMS, ids=str)
def test_node_publishes_own_stream(connect, ingest, stream):
    node = connect(NODE_A)

    reason = node.publish(_topic(NODE_A, stream), b"{}")

    assert not reason.is_failure
    assert ingest.wait_for_message(_topic(NODE_A, stream)).payload == b"{}"


@pytest.mark.parametrize(
    "target",
    [(NODE_B, Stream.ROOM), (NODE_B, Stream.STATUS), (NODE_C, Stream.ENERGY), (NODE_C, Stream.CONFIG_REPORTED)],
    ids=["same-opd-room", "same-opd-status", "other-opd-energy", "other-opd-config-reported"],
)
def test_node_publish_as_other_node_dropped(connect, ingest, target):
    node = connect(NODE_A)

    reason, received = _publish_then_marker(node, ingest, _topic(*target), _topic(NODE_A, Stream.ROOM))

    assert reason.value == NOT_AUTHORIZED
    assert not received


def test_node_publish_own_config_dropped(connect, ingest):
    """A node must not set its own desired configuration. Only the API publishes ``config``."""
    node = connect(NODE_A)

    reason, received = _publish_then_marker(node, ingest, _topic(NODE_A, Stream.CONFIG), _topic(NODE_A, Stream.ROOM))

    assert reason.value == NOT_AUTHORIZED
    assert not received


def test_node_publish_outside_tree_rejected(connect):
    node = connect(NODE_A)

    reason = node.publish("other/tree", b"x")

    assert reason.value == NOT_AUTHORIZED


@pytest.mark.parametrize(
    "protocol, expected_reason",
    [(mqtt.MQTTv311, 0x00), (mqtt.MQTTv5, NOT_AUTHORIZED)],
    ids=["mqtt311-plain-puback", "mqtt5-not-authorized"],
)
def test_denied_qos1_publish_puback(connect, ingest, protocol, expected_reason):
    """Mosquitto 2.0.11 acknowledges a denied QoS 1 publish, but only MQTT 5 carries the rejection."""
    node = connect(NODE_A, protocol=protocol)

    reason, received = _publish_then_marker(node, ingest, _topic(NODE_B, Stream.ROOM), _topic(NODE_A, Stream.ROOM))

    assert reason.value == expected_reason
    assert not received


@pytest.mark.parametrize(
    "protocol, expected_reason",
    [(mqtt.MQTTv311, SUBACK_FAILURE_MQTT311), (mqtt.MQTTv5, NOT_AUTHORIZED)],
    ids=["mqtt311", "mqtt5"],
)
def test_node_subscribe_other_config_rejected(connect, protocol, expected_reason):
    api = connect("api")
    other_config = _unique_payload("version")
    api.publish(_topic(NODE_B, Stream.CONFIG), other_config, retain=True)
    node = connect(NODE_A, protocol=protocol)

    reason = node.subscribe(_topic(NODE_B, Stream.CONFIG))
    own = node.subscribe(_topic(NODE_A, Stream.CONFIG))
    own_config = _unique_payload("version")
    api.publish(_topic(NODE_A, Stream.CONFIG), own_config, retain=True)

    assert reason.value == expected_reason
    assert not own.is_failure
    _wait_for_payload(node, _topic(NODE_A, Stream.CONFIG), own_config)
    assert node.payloads(_topic(NODE_B, Stream.CONFIG)) == []


@pytest.mark.parametrize("topic_filter", ["smartoffice/v1/#", "smartoffice/v1/kominfo/+/config", "#"])
def test_node_wildcard_subscribe_rejected(connect, topic_filter):
    node = connect(NODE_A)

    assert node.subscribe(topic_filter).value == NOT_AUTHORIZED


def test_node_receives_own_config(connect):
    api = connect("api")
    node = connect(NODE_C)
    config = _unique_payload("version")
    api.publish(_topic(NODE_C, Stream.CONFIG), config, retain=True)

    assert not node.subscribe(_topic(NODE_C, Stream.CONFIG)).is_failure
    message = node.wait_for_message(_topic(NODE_C, Stream.CONFIG))

    assert message.payload == config
    assert message.retain


def test_node_client_id_pinned(connect, acl):
    """A node may not connect with another client's id, which would take over that client's session."""
    probe = connect(NODE_A, client_id="smartoffice-ingest-1", expect_success=False)

    assert probe.connack.value == NOT_AUTHORIZED


@pytest.mark.parametrize(
    "will_node, delivered", [(NODE_A, True), (NODE_B, False)], ids=["own-status-delivered", "other-status-dropped"]
)
def test_node_last_will_checked(connect, ingest, acl, will_node, delivered):
    will_topic = _topic(will_node, Stream.STATUS)
    first = connect(NODE_A, will_topic=will_topic)
    first.client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
    first.wait_disconnected()

    # The broker publishes or drops the will while it handles that DISCONNECT, before it reads
    # the marker of the next connection.
    second = connect(NODE_A)
    marker = _unique_payload("marker")
    second.publish(_topic(NODE_A, Stream.ROOM), marker)
    _wait_for_payload(ingest, _topic(NODE_A, Stream.ROOM), marker)

    assert (b'{"state":"offline"}' in ingest.payloads(will_topic)) is delivered


# --- Anonymous clients and wrong passwords --------------------------------------------------


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["mqtt311", "mqtt5"])
def test_anonymous_client_rejected(connect, protocol):
    probe = connect(None, protocol=protocol, expect_success=False)

    assert probe.connack.is_failure
    assert str(probe.connack) == "Not authorized"


def test_wrong_password_rejected(acl, probes):
    entry = acl.credentials[NODE_A]
    probe = connect_probe(acl.broker.port, entry.username, "not-the-password", client_id=entry.client_id)
    probes.append(probe)

    assert probe.connack.value == NOT_AUTHORIZED


def test_node_password_of_other_node_rejected(acl, probes):
    entry_a = acl.credentials[NODE_A]
    entry_b = acl.credentials[NODE_B]
    probe = connect_probe(acl.broker.port, entry_a.username, entry_b.password, client_id=entry_a.client_id)
    probes.append(probe)

    assert probe.connack.value == NOT_AUTHORIZED


# --- Services -------------------------------------------------------------------------------


def test_ingest_cannot_publish(connect, ingest):
    publisher = connect("ingest")
    node = connect(NODE_A)

    # The marker comes from another connection, but the broker routes or drops a QoS 1
    # message before it sends its PUBACK, and the marker is sent after that PUBACK.
    reason, received = _publish_then_marker(
        node, ingest, _topic(NODE_A, Stream.ROOM), _topic(NODE_A, Stream.ENERGY), publisher=publisher
    )

    assert reason.value == NOT_AUTHORIZED
    assert not received


def test_ingest_shared_subscription_receives(connect):
    ingest = connect("ingest")
    assert not ingest.subscribe("$share/ingest/smartoffice/v1/+/+/room").is_failure
    node = connect(NODE_C)

    node.publish(_topic(NODE_C, Stream.ROOM), b"{}")

    assert ingest.wait_for_message(_topic(NODE_C, Stream.ROOM)).payload == b"{}"


@pytest.mark.parametrize(
    "stream", [Stream.ROOM, Stream.ENERGY, Stream.ATTENDANCE, Stream.STATUS, Stream.CONFIG_REPORTED], ids=str
)
def test_api_subscribes_node_stream(connect, stream):
    api = connect("api")
    node = connect(NODE_B)
    assert not api.subscribe(f"smartoffice/v1/+/+/{stream}").is_failure

    node.publish(_topic(NODE_B, stream), b"{}")

    assert api.wait_for_message(_topic(NODE_B, stream)).payload == b"{}"


@pytest.mark.parametrize("topic_filter", ["smartoffice/v1/#", "smartoffice/v1/+/+/config", "$SYS/#"])
def test_api_subscribe_outside_role_rejected(connect, topic_filter):
    api = connect("api")

    assert api.subscribe(topic_filter).value == NOT_AUTHORIZED


@pytest.mark.parametrize(
    "stream, allowed",
    [(Stream.ROOM, True), (Stream.ENERGY, True), (Stream.ATTENDANCE, True), (Stream.CONFIG, True),
     (Stream.STATUS, False), (Stream.CONFIG_REPORTED, False)],
    ids=str,
)
def test_api_publish_rights(connect, ingest, stream, allowed):
    """The API publishes configurations and telemetry replays, never a node's status or report."""
    api = connect("api")

    payload = _unique_payload("probe")
    reason = api.publish(_topic(NODE_C, stream), payload)
    marker = _unique_payload("marker")
    api.publish(_topic(NODE_C, Stream.ATTENDANCE), marker)
    _wait_for_payload(ingest, _topic(NODE_C, Stream.ATTENDANCE), marker)

    assert reason.is_failure is not allowed
    assert (payload in ingest.payloads(_topic(NODE_C, stream))) is allowed


def test_admin_cannot_read_device_data(connect):
    admin = connect("admin")

    assert admin.subscribe("smartoffice/v1/#").value == NOT_AUTHORIZED
