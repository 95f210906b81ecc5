"""MQTT over TLS on a real Mosquitto 2: the listener of production's shape, with test certificates.

The certificates come from the ``openssl`` command at test time: a CA, a server certificate
for 127.0.0.1 signed by it, and a second CA that signed nothing. The listener has only
``certfile`` and ``keyfile``, as in broker/mosquitto.conf, so clients log in with a user
name and password and present no certificate.
"""

import os
import shutil
import signal
import ssl
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest

from contract import Stream, build_topic
from devstack import MosquittoServer, free_port
from devstack.mosquitto import TlsListener
from registry.db import make_engine, session_factory, transaction
from registry.dynsec import DynsecClient, DynsecConnectionError
from registry.provisioning import NodeCredentials, provision_node

from conftest import wait_until

from broker_helpers import (
    WAIT_S,
    SecureBroker,
    TlsFiles,
    connect_probe,
    make_registry,
    make_test_pki,
    start_secure_broker,
    tls_listener,
)

pytestmark = pytest.mark.integration

NODE = ("kominfo", "gw-01")


@dataclass
class TlsSetup:
    broker: SecureBroker
    pki: TlsFiles
    tls_port: int
    node: NodeCredentials


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> TlsSetup:
    folder = tmp_path_factory.mktemp("broker-tls")
    pki = make_test_pki(folder / "pki")
    listener = tls_listener(pki)
    broker = start_secure_broker(folder, tls=listener)
    url = make_registry(folder / "registry.sqlite3", [NODE])
    engine = make_engine(url)
    admin = broker.identities.admin
    # The admin connection itself goes over TLS, as an operator's would from another host.
    dynsec = DynsecClient(
        "127.0.0.1", listener.port, admin.username, admin.password, cafile=pki.ca_cert, timeout_s=WAIT_S
    )
    with dynsec, transaction(session_factory(engine)) as session:
        node = provision_node(session, dynsec, *NODE, actor="test")
    engine.dispose()
    yield TlsSetup(broker, pki, listener.port, node)
    broker.server.stop()


@pytest.fixture
def probes():
    opened = []
    yield opened
    for probe in opened:
        probe.close()


def test_tls_node_connects_and_publishes(tls, probes):
    probe = connect_probe(
        tls.tls_port, tls.node.username, tls.node.password, client_id=tls.node.client_id, cafile=tls.pki.ca_cert
    )
    probes.append(probe)

    reason = probe.publish(build_topic(*NODE, Stream.ROOM), b"{}")

    assert not probe.connack.is_failure
    assert not reason.is_failure


def test_tls_wrong_ca_rejected(tls):
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        connect_probe(
            tls.tls_port,
            tls.node.username,
            tls.node.password,
            client_id=tls.node.client_id,
            cafile=tls.pki.other_ca_cert,
        )


def test_tls_system_cas_reject_test_certificate(tls):
    """A client that trusts only the system's CAs rejects a certificate of the regency's own CA."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="probe-system-cas")
    client.tls_set()
    client.username_pw_set(tls.node.username, tls.node.password)

    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect("127.0.0.1", tls.tls_port)


def test_tls_anonymous_rejected(tls, probes):
    probe = connect_probe(tls.tls_port, cafile=tls.pki.ca_cert)
    probes.append(probe)

    assert str(probe.connack) == "Not authorized"


def test_plain_mqtt_on_tls_port_closed(tls, probes):
    """A client without TLS gets no CONNACK: the broker reads its CONNECT as a failed handshake and closes."""
    probe = connect_probe(tls.tls_port, tls.node.username, tls.node.password, client_id=tls.node.client_id)
    probes.append(probe)

    assert probe.connack is None
    assert probe.disconnects


@pytest.mark.parametrize(
    "use_ca, message",
    [(None, "closed the connection before its CONNACK"), ("other", "certificate verify failed")],
    ids=["no-tls", "wrong-ca"],
)
def test_dynsec_client_tls_mismatch_fails(tls, use_ca, message):
    admin = tls.broker.identities.admin
    cafile = tls.pki.other_ca_cert if use_ca == "other" else None
    dynsec = DynsecClient("127.0.0.1", tls.tls_port, admin.username, admin.password, cafile=cafile, timeout_s=WAIT_S)

    with pytest.raises(DynsecConnectionError, match=message):
        dynsec.connect()


def test_tls_and_plain_listeners_share_identities(tls, probes):
    """The node's login works on both listeners, because both use the same plugin."""
    plain = connect_probe(tls.broker.port, tls.node.username, tls.node.password, client_id=tls.node.client_id)
    probes.append(plain)

    assert not plain.connack.is_failure


def test_sighup_reloads_server_certificate(tmp_path, probes):
    """A renewed certificate is served after SIGHUP, and connections made before stay up.

    The security docs rely on this to install a renewed certificate without a restart.
    """
    first = make_test_pki(tmp_path / "first")
    renewed = make_test_pki(tmp_path / "renewed")
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(first.server_cert, live / "server.crt")
    shutil.copy(first.server_key, live / "server.key")
    listener = TlsListener(free_port(), live / "server.crt", live / "server.key")
    server = MosquittoServer(tmp_path / "broker", tls=listener)
    server.start()
    try:
        before = connect_probe(listener.port, cafile=first.ca_cert)
        probes.append(before)
        shutil.copy(renewed.server_cert, live / "server.crt")
        shutil.copy(renewed.server_key, live / "server.key")

        os.kill(server.process.pid, signal.SIGHUP)
        after = wait_until(lambda: _connects(listener.port, renewed.ca_cert), timeout_s=WAIT_S, interval_s=0.05)
        assert after is not None, "the broker still serves the old certificate after SIGHUP"
        probes.append(after)

        with pytest.raises(ssl.SSLCertVerificationError):
            connect_probe(listener.port, cafile=first.ca_cert)
        assert not after.connack.is_failure
        assert before.disconnects == []
    finally:
        server.stop()


def _connects(port, cafile):
    """Return a connected probe, or None while the broker still serves the old certificate."""
    try:
        return connect_probe(port, cafile=cafile)
    except ssl.SSLCertVerificationError:
        return None
