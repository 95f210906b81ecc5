"""Helpers of the broker security tests: a Mosquitto with dynamic security, a registry, test
certificates, and an MQTT probe client that records what the broker sends back."""

import ssl
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from devstack import MosquittoServer, free_port
from devstack.mosquitto import TlsListener
from registry.broker_bootstrap import ServiceIdentities, generate_service_identities, write_bootstrap
from registry.db import make_engine, session_factory, transaction
from registry.dynsec import DynsecClient
from registry.migrate import upgrade
from registry.models import Node, Opd

WAIT_S = 10.0
"""Upper bound of every wait for the broker, s. A healthy broker on loopback responds in milliseconds."""


@dataclass
class SecureBroker:
    """A Mosquitto with the dynamic security plugin, and the identities of its bootstrap file."""

    server: MosquittoServer
    identities: ServiceIdentities
    folder: Path

    @property
    def port(self) -> int:
        return self.server.port

    def admin(self) -> DynsecClient:
        """Return an unconnected control client logged in as the admin."""
        admin = self.identities.admin
        return DynsecClient(self.server.host, self.server.port, admin.username, admin.password, timeout_s=WAIT_S)

    def log_text(self) -> str:
        """Return the broker's whole log."""
        log = self.server.data_dir / "mosquitto.log"
        return log.read_text(errors="replace") if log.exists() else ""


def start_secure_broker(folder: Path, tls: TlsListener | None = None) -> SecureBroker:
    """Write a bootstrap file with fresh service identities and start the broker on it."""
    folder.mkdir(parents=True, exist_ok=True)
    identities = generate_service_identities()
    dynsec_file = folder / "broker" / "dynamic-security.json"
    write_bootstrap(dynsec_file, folder / "services.json", identities)
    server = MosquittoServer(folder / "broker", dynsec_file=dynsec_file, tls=tls)
    server.start()
    return SecureBroker(server=server, identities=identities, folder=folder)


def make_registry(path: Path, nodes: list[tuple[str, str]]) -> str:
    """Create a migrated SQLite registry at ``path`` with ``(opd, node)`` rows and return its URL."""
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        opds: dict[str, Opd] = {}
        for opd_key, node_key in nodes:
            if opd_key not in opds:
                opds[opd_key] = Opd(key=opd_key, name=f"OPD {opd_key}")
                session.add(opds[opd_key])
                session.flush()
            session.add(Node(opd_id=opds[opd_key].id, key=node_key, name=f"node {node_key}"))
    engine.dispose()
    return url


# --- Test certificates ----------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A CA, a server certificate for 127.0.0.1 signed by it, and a second CA that signed nothing."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    other_ca_cert: Path


def _openssl(*arguments: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *arguments], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(arguments[:2])} failed: {result.stderr.strip()}")


def _self_signed_ca(folder: Path, name: str) -> Path:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
        cwd=folder,
    )
    return folder / f"{name}.crt"


def make_test_pki(folder: Path) -> TlsFiles:
    """Generate the certificates with the ``openssl`` command, valid for two days."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert = _self_signed_ca(folder, "test-ca")
    other_ca_cert = _self_signed_ca(folder, "other-ca")
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        cwd=folder,
    )
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n",
        encoding="utf-8",
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "test-ca.crt", "-CAkey", "test-ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
        cwd=folder,
    )
    (folder / "server.key").chmod(0o600)
    return TlsFiles(ca_cert, folder / "server.crt", folder / "server.key", other_ca_cert)


def tls_listener(pki: TlsFiles) -> TlsListener:
    """Return a TLS listener on a free loopback port with the test server certificate."""
    return TlsListener(port=free_port(), certfile=pki.server_cert, keyfile=pki.server_key)


# --- MQTT probe -----------------------------------------------------------------------------


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class Probe:
    """A paho client that records CONNACK, SUBACK, PUBACK, messages and disconnections."""

    client: mqtt.Client
    connack: ReasonCode | None = None
    messages: list[Received] = field(default_factory=list)
    disconnects: list[ReasonCode] = field(default_factory=list)
    subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)
    pubacks: dict[int, ReasonCode] = field(default_factory=dict)
    condition: threading.Condition = field(default_factory=threading.Condition)

    def wait(self, predicate, what: str, timeout_s: float = WAIT_S):
        """Wait until ``predicate()`` is truthy and return its value. Fail the test after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self.condition:
            while not (value := predicate()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
                self.condition.wait(remaining)
            return value

    def subscribe(self, topic: str, qos: int = 1) -> ReasonCode:
        """Subscribe and return the SUBACK's reason code."""
        _, mid = self.client.subscribe(topic, qos)
        return self.wait(lambda: self.subacks.get(mid), f"SUBACK of {topic}")[0]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> ReasonCode | None:
        """Publish, and for QoS 1 wait for the PUBACK and return its reason code."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0:
            return None
        return self.wait(lambda: self.pubacks.get(info.mid), f"PUBACK of {topic}")

    def wait_for_message(self, topic: str) -> Received:
        """Wait for a message on ``topic`` and return it."""

        def found():
            return next((message for message in self.messages if message.topic == topic), None)

        return self.wait(found, f"a message on {topic}")

    def topics(self) -> list[str]:
        """Return the topics of every message received so far."""
        with self.condition:
            return [message.topic for message in self.messages]

    def payloads(self, topic: str) -> list[bytes]:
        """Return the payloads received so far on ``topic``."""
        with self.condition:
            return [message.payload for message in self.messages if message.topic == topic]

    def wait_disconnected(self) -> ReasonCode:
        """Wait until the connection closes and return the reason paho reports."""
        return self.wait(lambda: self.disconnects[0] if self.disconnects else None, "a disconnection")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect_probe(
    port: int,
    username: str | None = None,
    password: str | None = None,
    client_id: str | None = None,
    protocol: int = mqtt.MQTTv5,
    cafile: Path | None = None,
    will_topic: str | None = None,
) -> Probe:
    """Connect a probe and wait for the CONNACK, whatever its reason code.

    The probe never reconnects on its own, so a rejected or dropped connection stays visible.

    Raises:
        OSError, ssl.SSLError: the TCP connection or the TLS handshake failed.
    """
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id or f"probe-{uuid.uuid4().hex[:10]}",
        protocol=protocol,
        reconnect_on_failure=False,
    )
    probe = Probe(client)
    if username is not None:
        client.username_pw_set(username, password)
    if cafile is not None:
        client.tls_set(ca_certs=str(cafile), cert_reqs=ssl.CERT_REQUIRED)
    if will_topic is not None:
        client.will_set(will_topic, b'{"state":"offline"}', qos=1, retain=False)

    def recording(action):
        def callback(*args):
            with probe.condition:
                action(*args)
                probe.condition.notify_all()

        return callback

    client.on_connect = recording(lambda c, u, flags, rc, p: setattr(probe, "connack", rc))
    client.on_disconnect = recording(lambda c, u, flags, rc, p: probe.disconnects.append(rc))
    client.on_subscribe = recording(lambda c, u, mid, rcs, p: probe.subacks.__setitem__(mid, rcs))
    client.on_publish = recording(lambda c, u, mid, rc, p: probe.pubacks.__setitem__(mid, rc))
    client.on_message = recording(
        lambda c, u, m: probe.messages.append(Received(m.topic, m.payload, bool(m.retain)))
    )

    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    probe.wait(lambda: probe.connack is not None or probe.disconnects, "a CONNACK")
    return probe
