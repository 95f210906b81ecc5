"""Provisioning, rotation and revocation of node identities on a running Mosquitto with dynamic security.

Covers the library (``registry.provisioning``), the registry commands, the API routes, the
local platform's identity files and the simulator's credentials file. Every broker change is
checked by connecting as the node, never by reading the plugin's file.
"""

import json
import logging
import stat
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.config import ApiSettings
from api.errors import install_error_handlers
from api.routes import provisioning as provisioning_routes
from contract import Stream, build_topic
from contract.catalogue import load_catalogue
from devstack import MosquittoServer
from devstack.broker_identities import BrokerFiles, prepare_service_identities, provision_catalogue_nodes
from firmware_sim.config import SimSettings
from firmware_sim.credentials import CredentialsFileError, load_credentials_file
from firmware_sim.publisher import Publisher
from firmware_sim.regency import build_regency
from registry.__main__ import main as registry_main
from registry.broker_acl import Acl, node_acls, node_client_id, node_username
from registry.db import make_engine, session_factory, transaction
from registry.dynsec import DynsecClient
from registry.node_credentials import read_node_entries
from registry.models import AuditEntry, Node
from registry.provisioning import (
    ClientIdConflictError,
    NodeNotFoundError,
    NodeNotProvisionedError,
    find_node,
    provision_node,
    revoke_node,
)

from broker_helpers import WAIT_S, SecureBroker, connect_probe, make_registry, start_secure_broker

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87
ADMINISTRATIVE_ACTION = 0x98


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> SecureBroker:
    server = start_secure_broker(tmp_path_factory.mktemp("provisioning"))
    yield server
    server.server.stop()


@pytest.fixture
def registry(tmp_path, unique_id):
    """A registry with OPD ``unique_id`` and its nodes gw-01 and gw-02.

    Unique ids keep the tests apart on the shared broker.
    """
    url = make_registry(tmp_path / "registry.sqlite3", [(unique_id, "gw-01"), (unique_id, "gw-02")])
    engine = make_engine(url)
    yield SimpleNamespace(url=url, factory=session_factory(engine), opd=unique_id, path=tmp_path / "registry.sqlite3")
    engine.dispose()


@pytest.fixture
def probes():
    opened = []
    yield opened
    for probe in opened:
        probe.close()


def _provision(broker, registry, node="gw-01"):
    with broker.admin() as dynsec, transaction(registry.factory) as session:
        return provision_node(session, dynsec, registry.opd, node, actor="test")


def _revoke(broker, registry, node="gw-01"):
    with broker.admin() as dynsec, transaction(registry.factory) as session:
        return revoke_node(session, dynsec, registry.opd, node, actor="test")


def _node_row(registry, node="gw-01") -> Node:
    with transaction(registry.factory) as session:
        return find_node(session, registry.opd, node)


def _connect(broker, probes, username, password, client_id):
    probe = connect_probe(broker.port, username, password, client_id=client_id)
    probes.append(probe)
    return probe


def _connect_node(broker, probes, credentials):
    return _connect(broker, probes, credentials.username, credentials.password, credentials.client_id)


# --- Library --------------------------------------------------------------------------------


def test_provision_stores_only_argon2_hash(broker, registry):
    credentials = _provision(broker, registry)
    row = _node_row(registry)

    assert credentials.username == node_username(registry.opd, "gw-01")
    assert credentials.client_id == node_client_id(registry.opd, "gw-01")
    assert len(credentials.password) >= 40
    assert row.mqtt_username == credentials.username
    assert row.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(row.password_hash, credentials.password)
    assert row.provisioned_at_ms is not None
    assert row.revoked_at_ms is None
    stored = b"".join(path.read_bytes() for path in registry.path.parent.glob("registry.sqlite3*"))
    assert credentials.password.encode() not in stored


def test_provisioned_node_connects_and_publishes(broker, registry, probes):
    credentials = _provision(broker, registry)

    probe = _connect_node(broker, probes, credentials)
    reason = probe.publish(build_topic(registry.opd, "gw-01", Stream.ROOM), b"{}")

    assert not probe.connack.is_failure
    assert not reason.is_failure


def test_revoke_rejects_next_connection(broker, registry, probes):
    credentials = _provision(broker, registry)

    _revoke(broker, registry)
    probe = _connect_node(broker, probes, credentials)

    assert probe.connack.value == NOT_AUTHORIZED
    row = _node_row(registry)
    assert row.revoked_at_ms is not None
    assert row.password_hash is None


def test_revoke_disconnects_live_connection(broker, registry, probes):
    credentials = _provision(broker, registry)
    probe = _connect_node(broker, probes, credentials)
    assert not probe.connack.is_failure

    _revoke(broker, registry)

    assert probe.wait_disconnected().value == ADMINISTRATIVE_ACTION


def test_revoke_leaves_other_node_connected(broker, registry, probes):
    revoked = _provision(broker, registry, "gw-01")
    kept = _provision(broker, registry, "gw-02")
    kept_probe = _connect_node(broker, probes, kept)
    revoked_probe = _connect_node(broker, probes, revoked)

    _revoke(broker, registry, "gw-01")
    revoked_probe.wait_disconnected()
    reason = kept_probe.publish(build_topic(registry.opd, "gw-02", Stream.ROOM), b"{}")

    assert not reason.is_failure
    assert kept_probe.disconnects == []


def test_reprovision_rotates_password(broker, registry, probes):
    old = _provision(broker, registry)
    live = _connect_node(broker, probes, old)
    old_hash = _node_row(registry).password_hash

    new = _provision(broker, registry)

    assert new.password != old.password
    assert live.wait_disconnected().value == ADMINISTRATIVE_ACTION
    assert _connect_node(broker, probes, old).connack.value == NOT_AUTHORIZED
    assert not _connect_node(broker, probes, new).connack.is_failure
    assert _node_row(registry).password_hash != old_hash


def test_reprovision_after_revoke_restores_access(broker, registry, probes):
    _provision(broker, registry)
    _revoke(broker, registry)

    credentials = _provision(broker, registry)

    assert not _connect_node(broker, probes, credentials).connack.is_failure
    assert _node_row(registry).revoked_at_ms is None


def test_provision_unknown_node_changes_nothing(broker, registry):
    with pytest.raises(NodeNotFoundError, match="gw-99"):
        _provision(broker, registry, "gw-99")

    with broker.admin() as dynsec:
        assert dynsec.get_client(node_username(registry.opd, "gw-99")) is None
        assert dynsec.get_role(node_username(registry.opd, "gw-99")) is None


def test_revoke_unprovisioned_node_raises(broker, registry):
    with pytest.raises(NodeNotProvisionedError, match="never provisioned"):
        _revoke(broker, registry)


def test_revoke_twice_keeps_first_time(broker, registry):
    _provision(broker, registry)
    first = _revoke(broker, registry).revoked_at_ms

    second = _revoke(broker, registry).revoked_at_ms

    assert second == first


def test_provision_repairs_changed_role(broker, registry):
    _provision(broker, registry)
    role = node_username(registry.opd, "gw-01")
    with broker.admin() as dynsec:
        dynsec.remove_role_acl(role, "subscribeLiteral", build_topic(registry.opd, "gw-01", Stream.CONFIG))
        dynsec.add_role_acl(role, Acl("publishClientSend", "smartoffice/v1/#"))

    _provision(broker, registry)

    with broker.admin() as dynsec:
        acls = {(acl["acltype"], acl["topic"], acl["allow"]) for acl in dynsec.get_role(role)["acls"]}
    assert acls == {(acl.acltype, acl.topic, acl.allow) for acl in node_acls(registry.opd, "gw-01")}


def test_provision_rejects_client_id_conflict(broker, tmp_path):
    # Both pairs map to the client id edge-a-b-c.
    url = make_registry(tmp_path / "conflict.sqlite3", [("a-b", "c"), ("a", "b-c")])
    engine = make_engine(url)
    try:
        with pytest.raises(ClientIdConflictError, match="edge-a-b-c"):
            with broker.admin() as dynsec, transaction(session_factory(engine)) as session:
                provision_node(session, dynsec, "a-b", "c", actor="test")
    finally:
        engine.dispose()


def test_provision_and_revoke_audited(broker, registry):
    _provision(broker, registry)
    _revoke(broker, registry)

    with transaction(registry.factory) as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(entry.action, entry.actor, entry.target) for entry in entries] == [
        ("node.provision", "test", f"{registry.opd}/gw-01"),
        ("node.revoke", "test", f"{registry.opd}/gw-01"),
    ]


# --- Registry commands ----------------------------------------------------------------------


@pytest.fixture
def admin_env(broker, monkeypatch):
    monkeypatch.setenv("SMARTOFFICE_MQTT_HOST", "127.0.0.1")
    monkeypatch.setenv("SMARTOFFICE_MQTT_PORT", str(broker.port))
    monkeypatch.setenv("SMARTOFFICE_BROKER_ADMIN_PASSWORD", broker.identities.admin.password)


def test_cli_bootstrap_writes_private_files(tmp_path, capsys):
    dynsec_file = tmp_path / "broker" / "dynamic-security.json"
    credentials_file = tmp_path / "services.json"

    status = registry_main(
        ["bootstrap-broker", "--dynsec-file", str(dynsec_file), "--credentials-file", str(credentials_file)]
    )

    assert status == 0
    assert stat.S_IMODE(dynsec_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
    services = json.loads(credentials_file.read_text())
    assert set(services) == {"admin", "ingest", "api"}
    assert services["admin"]["password"] not in capsys.readouterr().out
    assert services["admin"]["password"] not in dynsec_file.read_text()


def test_cli_bootstrap_rejects_overwrite(tmp_path, capsys):
    dynsec_file = tmp_path / "dynamic-security.json"
    dynsec_file.write_text("{}")

    status = registry_main(
        ["bootstrap-broker", "--dynsec-file", str(dynsec_file), "--credentials-file", str(tmp_path / "s.json")]
    )

    assert status == 2
    assert "--force" in capsys.readouterr().err
    assert dynsec_file.read_text() == "{}"


def test_cli_bootstrap_file_starts_broker(tmp_path, probes, capsys):
    dynsec_file = tmp_path / "broker" / "dynamic-security.json"
    credentials_file = tmp_path / "services.json"
    registry_main(["bootstrap-broker", "--dynsec-file", str(dynsec_file), "--credentials-file", str(credentials_file)])
    services = json.loads(credentials_file.read_text())
    server = MosquittoServer(tmp_path / "broker", dynsec_file=dynsec_file)
    server.start()
    try:
        probe = connect_probe(server.port, services["ingest"]["username"], services["ingest"]["password"])
        probes.append(probe)
        anonymous = connect_probe(server.port)
        probes.append(anonymous)

        assert not probe.connack.is_failure
        assert anonymous.connack.value == NOT_AUTHORIZED
    finally:
        server.stop()


def test_cli_provision_prints_credentials(broker, registry, admin_env, probes, capsys, caplog):
    caplog.set_level(logging.DEBUG)

    status = registry_main(["--database-url", registry.url, "provision-node", registry.opd, "gw-01"])

    assert status == 0
    output = json.loads(capsys.readouterr().out)
    assert output["broker"] == {"host": "127.0.0.1", "port": broker.port, "tls": False}
    assert not _connect(broker, probes, output["username"], output["password"], output["client_id"]).connack.is_failure
    assert output["password"] not in caplog.text


def test_cli_provision_to_credentials_file(broker, registry, admin_env, probes, tmp_path, capsys):
    credentials_file = tmp_path / "nodes.json"

    status = registry_main(
        ["--database-url", registry.url, "provision-node", registry.opd, "gw-02"]
        + ["--credentials-file", str(credentials_file)]
    )

    assert status == 0
    assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
    entry = load_credentials_file(credentials_file)[(registry.opd, "gw-02")]
    assert entry.password not in capsys.readouterr().out
    assert not _connect(broker, probes, entry.username, entry.password, entry.client_id).connack.is_failure


def test_cli_revoke_node(broker, registry, admin_env, probes, capsys):
    credentials = _provision(broker, registry)

    status = registry_main(["--database-url", registry.url, "revoke-node", registry.opd, "gw-01"])

    assert status == 0
    assert _connect_node(broker, probes, credentials).connack.value == NOT_AUTHORIZED


def test_cli_without_admin_password_fails(registry, monkeypatch, capsys):
    monkeypatch.delenv("SMARTOFFICE_BROKER_ADMIN_PASSWORD", raising=False)

    status = registry_main(["--database-url", registry.url, "provision-node", registry.opd, "gw-01"])

    assert status == 2
    assert "SMARTOFFICE_BROKER_ADMIN_PASSWORD" in capsys.readouterr().err


def test_cli_unknown_node_fails(registry, admin_env, capsys):
    status = registry_main(["--database-url", registry.url, "revoke-node", registry.opd, "gw-77"])

    assert status == 2
    assert "gw-77" in capsys.readouterr().err


# --- API routes -----------------------------------------------------------------------------


def _api(broker, registry, **overrides) -> TestClient:
    """A client of an application with only the provisioning routes, on the real broker and registry."""
    values = dict(
        mqtt_host="127.0.0.1",
        mqtt_port=broker.port,
        broker_admin_password=broker.identities.admin.password,
        node_broker_host="broker.example.go.id",
        node_broker_port=8883,
        node_broker_tls=True,
    )
    values.update(overrides)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(provisioning_routes.router)
    app.state.context = SimpleNamespace(settings=ApiSettings(**values), registry=registry.factory)
    return TestClient(app)


def _credentials_path(registry, node="gw-01") -> str:
    return f"/api/v1/opds/{registry.opd}/nodes/{node}/credentials"


def test_api_post_returns_credentials_once(broker, registry, probes):
    response = _api(broker, registry).post(_credentials_path(registry))

    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["broker"] == {"host": "broker.example.go.id", "port": 8883, "tls": True}
    assert body["client_id"] == node_client_id(registry.opd, "gw-01")
    assert not _connect(broker, probes, body["username"], body["password"], body["client_id"]).connack.is_failure


def test_api_post_again_rotates(broker, registry, probes):
    api = _api(broker, registry)
    first = api.post(_credentials_path(registry)).json()

    second = api.post(_credentials_path(registry)).json()

    old = _connect(broker, probes, first["username"], first["password"], first["client_id"])
    new = _connect(broker, probes, second["username"], second["password"], second["client_id"])

    assert old.connack.value == NOT_AUTHORIZED
    assert not new.connack.is_failure


def test_api_delete_revokes(broker, registry, probes):
    api = _api(broker, registry)
    body = api.post(_credentials_path(registry)).json()
    live = _connect(broker, probes, body["username"], body["password"], body["client_id"])

    response = api.delete(_credentials_path(registry))

    assert response.status_code == 200
    assert response.json()["username"] == body["username"]
    assert response.json()["revoked_at_ms"] > 0
    assert live.wait_disconnected().value == ADMINISTRATIVE_ACTION
    again = _connect(broker, probes, body["username"], body["password"], body["client_id"])
    assert again.connack.value == NOT_AUTHORIZED


@pytest.mark.parametrize("method", ["post", "delete"])
def test_api_unknown_node_404(broker, registry, method):
    response = getattr(_api(broker, registry), method)(_credentials_path(registry, "gw-77") + "?lang=en")

    assert response.status_code == 404
    assert response.json()["code"] == "node_not_found"


def test_api_delete_unprovisioned_409(broker, registry):
    response = _api(broker, registry).delete(_credentials_path(registry))

    assert response.status_code == 409
    assert response.json()["code"] == "node_not_provisioned"


def test_api_without_admin_password_503(broker, registry):
    response = _api(broker, registry, broker_admin_password=None).post(_credentials_path(registry))

    assert response.status_code == 503
    assert response.json()["code"] == "broker_admin_not_configured"


def test_api_wrong_admin_password_leaves_registry(broker, registry, caplog):
    response = _api(broker, registry, broker_admin_password="not-the-admin-password").post(_credentials_path(registry))

    assert response.status_code == 503
    assert response.json()["code"] == "broker_admin_failed"
    assert _node_row(registry).password_hash is None
    assert "not-the-admin-password" not in caplog.text


# --- Secrets in logs ------------------------------------------------------------------------


def test_passwords_absent_from_logs(broker, registry, caplog):
    caplog.set_level(logging.DEBUG)

    first = _provision(broker, registry)
    second = _provision(broker, registry)
    _revoke(broker, registry)

    secrets = [first.password, second.password, broker.identities.admin.password]
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in broker.log_text()
    assert "password=*****" in broker.log_text()


# --- Local platform -------------------------------------------------------------------------


SMALL_CATALOGUE = """
regency: {id: uji, name: Kabupaten Uji, province: Uji, timezone: Asia/Jakarta}
opds:
- id: OPD
  name: Dinas Uji
  rooms: [{id: ruang-1, name: Ruang 1}]
  nodes:
  - id: gw-01
    devices: [{id: sensor-1, kind: room_sensor, room: ruang-1}]
  - id: gw-02
    devices: [{id: meter-1, kind: energy_meter, circuit: panel-1}]
"""


def test_local_identities_kept_across_restarts(tmp_path, unique_id, probes, caplog):
    catalogue_file = tmp_path / "regency.yaml"
    catalogue_file.write_text(SMALL_CATALOGUE.replace("id: OPD", f"id: {unique_id}"))
    catalogue = load_catalogue(catalogue_file)
    files = BrokerFiles.under(tmp_path / "local")
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    identities = prepare_service_identities(files)
    server = MosquittoServer(tmp_path / "local" / "mosquitto", dynsec_file=files.dynsec_file)
    server.start()
    try:
        admin = identities.admin
        with _admin(server, admin) as dynsec:
            first = provision_catalogue_nodes(url, catalogue, dynsec, files.nodes_file)
            entries = read_node_entries(files.nodes_file)
            again = provision_catalogue_nodes(url, catalogue, dynsec, files.nodes_file)

        assert first == 2
        assert again == 0
        assert prepare_service_identities(files) == identities
        assert read_node_entries(files.nodes_file) == entries
        for path in (files.dynsec_file, files.services_file, files.nodes_file):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        entry = entries[f"{unique_id}/gw-01"]
        probe = connect_probe(server.port, entry["username"], entry["password"], entry["client_id"])
        probes.append(probe)
        assert not probe.connack.is_failure
        for secret in [admin.password, *(entry["password"] for entry in entries.values())]:
            assert secret not in caplog.text
    finally:
        server.stop()


def test_local_identities_skip_revoked_node(tmp_path, unique_id):
    catalogue_file = tmp_path / "regency.yaml"
    catalogue_file.write_text(SMALL_CATALOGUE.replace("id: OPD", f"id: {unique_id}"))
    catalogue = load_catalogue(catalogue_file)
    files = BrokerFiles.under(tmp_path / "local")
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    identities = prepare_service_identities(files)
    server = MosquittoServer(tmp_path / "local" / "mosquitto", dynsec_file=files.dynsec_file)
    server.start()
    try:
        engine = make_engine(url)
        with _admin(server, identities.admin) as dynsec:
            provision_catalogue_nodes(url, catalogue, dynsec, files.nodes_file)
            with transaction(session_factory(engine)) as session:
                revoke_node(session, dynsec, unique_id, "gw-01", actor="test")
            files.nodes_file.unlink()

            provisioned = provision_catalogue_nodes(url, catalogue, dynsec, files.nodes_file)
        engine.dispose()

        assert provisioned == 1
        assert set(read_node_entries(files.nodes_file)) == {f"{unique_id}/gw-02"}
    finally:
        server.stop()


def test_local_identities_renewed_without_services_file(tmp_path):
    files = BrokerFiles.under(tmp_path / "local")
    first = prepare_service_identities(files)
    files.nodes_file.write_text('{"nodes": {}}')
    files.services_file.unlink()

    second = prepare_service_identities(files)

    assert second.admin.password != first.admin.password
    assert not files.nodes_file.exists()


def _admin(server: MosquittoServer, admin) -> DynsecClient:
    return DynsecClient(server.host, server.port, admin.username, admin.password, timeout_s=WAIT_S)


# --- Simulator ------------------------------------------------------------------------------


def test_simulator_connects_each_node_with_own_login(broker, admin_env, tmp_path, unique_id, capsys):
    catalogue_file = tmp_path / "regency.yaml"
    catalogue_file.write_text(SMALL_CATALOGUE.replace("id: OPD", f"id: {unique_id}"))
    url = make_registry(tmp_path / "registry.sqlite3", [(unique_id, "gw-01"), (unique_id, "gw-02")])
    credentials_file = tmp_path / "nodes.json"
    for node in ("gw-01", "gw-02"):
        args = ["--database-url", url, "provision-node", unique_id, node, "--credentials-file", str(credentials_file)]
        assert registry_main(args) == 0
    regency = build_regency(load_catalogue(catalogue_file), seed=1, opd_ids=[unique_id])
    settings = SimSettings(mqtt_host="127.0.0.1", mqtt_port=broker.port)

    publisher = Publisher(regency.nodes, settings, credentials=load_credentials_file(credentials_file))
    publisher.start()
    try:
        connected = publisher.wait_connected(WAIT_S)
    finally:
        publisher.close(1.0)

    assert connected == 2
    assert {client.client_id for client in publisher.clients.values()} == {
        node_client_id(unique_id, "gw-01"),
        node_client_id(unique_id, "gw-02"),
    }


def test_simulator_node_without_login_rejected(broker, tmp_path, unique_id):
    catalogue_file = tmp_path / "regency.yaml"
    catalogue_file.write_text(SMALL_CATALOGUE.replace("id: OPD", f"id: {unique_id}"))
    regency = build_regency(load_catalogue(catalogue_file), seed=1, opd_ids=[unique_id])
    settings = SimSettings(mqtt_host="127.0.0.1", mqtt_port=broker.port, sim_reconnect_min_delay_s=60)

    publisher = Publisher(regency.nodes, settings, credentials={})
    publisher.start()
    try:
        connected = publisher.wait_connected(1.0)
    finally:
        publisher.close(0.0)

    assert connected == 0


@pytest.mark.parametrize(
    "content, problem",
    [
        ("not json", "is invalid"),
        ('{"nodes": {"no-slash": {"username": "u", "password": "p"}}}', "expected '<opd>/<node>'"),
        ('{"nodes": {"a/b": {"username": "u"}}}', "needs a username and a password"),
        ('{"nodes": []}', "must be an object"),
    ],
    ids=["not-json", "bad-key", "no-password", "nodes-not-object"],
)
def test_simulator_credentials_file_invalid(tmp_path, content, problem):
    path = tmp_path / "nodes.json"
    path.write_text(content)

    with pytest.raises(CredentialsFileError, match=problem):
        load_credentials_file(path)


def test_simulator_credentials_file_missing(tmp_path):
    with pytest.raises(CredentialsFileError, match="cannot read"):
        load_credentials_file(tmp_path / "absent.json")
