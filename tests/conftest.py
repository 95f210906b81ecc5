"""Fixtures that start real Mosquitto and InfluxDB processes on free loopback ports.

Both servers live for the whole session in a temporary folder. Each test that writes data
gets a database of its own (``influx_db``) and OPD ids of its own, so tests never see each
other's points.
"""

import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml
from paho.mqtt import publish

from api.config import DEFAULT_ALERT_RULES
from api.security.principals import Role
from api.security.users_cli import create_user
from devstack import InfluxServer, ManagedProcess, MosquittoServer, ProcessError, free_port
from ingest.pseudonyms import pseudonym
from registry.db import make_engine, session_factory
from registry.migrate import upgrade

REPO_ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = Path(__file__).resolve().parent / "cases"
"""Field cases: raw inputs from real devices and bug reports, with their expected outcomes."""

TEST_PSEUDONYM_KEY = "test-pseudonym-key-" + "5f1c" * 8
"""Pseudonym key of every ingest and API process the tests start; tests compute expected pseudonyms with it."""

TEST_JWT_SECRET = "test-jwt-secret-" + "9a7e" * 8
"""Access-token key of the ``pipeline`` API."""

PIPELINE_ADMIN = "pipeline-admin"
PIPELINE_ADMIN_PASSWORD = "pipeline-admin-" + "3d5b" * 4


def pseudonym_of(opd: str, employee_id: str) -> str:
    """Return the pseudonym under which the test processes store ``employee_id`` of ``opd``."""
    return pseudonym(TEST_PSEUDONYM_KEY.encode(), opd, employee_id)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory) -> MosquittoServer:
    """A Mosquitto broker for the session, with persistence on."""
    server = MosquittoServer(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influx(tmp_path_factory) -> InfluxServer:
    """An ``influxd`` (1.x, v1 HTTP API) for the session."""
    server = InfluxServer(tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influx_db(influx) -> str:
    """Name of a fresh database on the session's InfluxDB."""
    name = "test_" + uuid.uuid4().hex[:12]
    influx.create_database(name)
    return name


@pytest.fixture
def unique_id() -> str:
    """A short id, valid in the wire contract, unique to the test (use it as an OPD id)."""
    return "t" + uuid.uuid4().hex[:10]


@dataclass
class Pipeline:
    """Ingest and API processes on the session's broker and InfluxDB, sharing one database."""

    mosquitto: MosquittoServer
    influx: InfluxServer
    database: str
    ingest: ManagedProcess
    api: ManagedProcess
    api_url: str
    metrics_url: str
    dead_letter_path: Path
    database_url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    """``Authorization`` header of the pipeline's admin user; ``get`` and ``request`` send it."""

    def publish(self, messages: list[tuple[str, str | bytes]], qos: int = 1, retain: bool = False) -> None:
        """Publish ``(topic, payload)`` pairs at ``qos`` and wait until the broker has them."""
        publish.multiple(
            [{"topic": topic, "payload": payload, "qos": qos, "retain": retain} for topic, payload in messages],
            hostname=self.mosquitto.host,
            port=self.mosquitto.port,
            client_id="test-publisher-" + uuid.uuid4().hex[:8],
        )

    def query(self, influxql: str) -> list[dict]:
        """Run InfluxQL on the pipeline's database; return the series of the first statement."""
        return self.influx.query(self.database, influxql)["results"][0].get("series", [])

    def get(self, path: str, **params) -> httpx.Response:
        """GET ``path`` from the API as the pipeline's admin user."""
        return httpx.get(self.api_url + path, params=params, headers=self.headers, timeout=10.0)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Send any request to the API as the pipeline's admin user; ``kwargs`` go to ``httpx.request``."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return httpx.request(method, self.api_url + path, headers=headers, timeout=kwargs.pop("timeout", 10.0), **kwargs)


def wait_until(condition, timeout_s: float = 15.0, interval_s: float = 0.1):
    """Poll ``condition`` until it returns a truthy value, and return that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def start_ingest(
    folder: Path,
    mosquitto: MosquittoServer,
    influx: InfluxServer,
    database: str,
    client_id: str,
    ready_line: str = "subscribed to",
    **settings: str,
) -> ManagedProcess:
    """Start ``python -m ingest`` and wait until its log shows ``ready_line``.

    A first start must wait for the subscription, or messages published before it are lost.
    A restart resumes a session whose subscriptions exist, so it may wait for the connection only.
    """
    env = dict(
        os.environ,
        SMARTOFFICE_MQTT_HOST=mosquitto.host,
        SMARTOFFICE_MQTT_PORT=str(mosquitto.port),
        SMARTOFFICE_INFLUX_URL=influx.url,
        SMARTOFFICE_INFLUX_DB=database,
        SMARTOFFICE_MQTT_CLIENT_ID=client_id,
        SMARTOFFICE_DEAD_LETTER_PATH=str(folder / f"{client_id}-dead-letters.sqlite3"),
        SMARTOFFICE_PSEUDONYM_KEY=TEST_PSEUDONYM_KEY,
        **{f"SMARTOFFICE_{key.upper()}": value for key, value in settings.items()},
    )
    # A log file per start, so that the readiness check reads this process's lines only.
    log_path = folder / f"{client_id}-{uuid.uuid4().hex[:6]}.log"
    process = ManagedProcess("ingest", [sys.executable, "-m", "ingest"], log_path, env=env, cwd=REPO_ROOT)
    process.start()
    try:
        process.wait_ready(lambda: ready_line in process.log_tail(200), timeout_s=30)
    except ProcessError:
        process.stop()
        raise
    return process


def start_api(
    folder: Path,
    mosquitto: MosquittoServer,
    influx: InfluxServer,
    database: str,
    name: str = "api",
    scheme: str = "http",
    **settings: str,
) -> tuple[ManagedProcess, str]:
    """Start ``python -m api`` with the test keys and a registry in ``folder``; return it and its base URL.

    ``settings`` become ``SMARTOFFICE_<NAME>`` variables and override the defaults here.
    """
    port = free_port()
    env = dict(
        os.environ,
        SMARTOFFICE_MQTT_HOST=mosquitto.host,
        SMARTOFFICE_MQTT_PORT=str(mosquitto.port),
        SMARTOFFICE_INFLUX_URL=influx.url,
        SMARTOFFICE_INFLUX_DB=database,
        SMARTOFFICE_API_PORT=str(port),
        SMARTOFFICE_DEAD_LETTER_PATH=str(folder / f"{name}-dead-letters.sqlite3"),
        SMARTOFFICE_DATABASE_URL=f"sqlite:///{folder / f'{name}-registry.sqlite3'}",
        SMARTOFFICE_PSEUDONYM_KEY=TEST_PSEUDONYM_KEY,
        SMARTOFFICE_JWT_SECRET=TEST_JWT_SECRET,
        SMARTOFFICE_ATTENDANCE_RETENTION_DAYS="0",
    )
    env.update({f"SMARTOFFICE_{key.upper()}": value for key, value in settings.items()})
    url = f"{scheme}://127.0.0.1:{port}"
    process = ManagedProcess(name, [sys.executable, "-m", "api"], folder / f"{name}-{uuid.uuid4().hex[:6]}.log", env=env, cwd=REPO_ROOT)
    process.start()
    try:
        # Readiness only: the TLS tests check the certificate themselves.
        process.wait_ready(lambda: _answers(url + "/openapi.json", verify=scheme == "http"), timeout_s=30)
    except ProcessError:
        process.stop()
        raise
    return process, url


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, mosquitto, influx) -> Pipeline:
    """Ingest and API subprocesses for the test module, on a database of their own.

    The ingest has a plain subscription, so it receives every message even when another
    module's ingest runs on the same broker.
    """
    folder = tmp_path_factory.mktemp("pipeline")
    database = "pipeline_" + uuid.uuid4().hex[:8]
    influx.create_database(database)
    metrics_port = free_port()
    client_id = "ingest-" + uuid.uuid4().hex[:8]
    # Tests publish fixed historical timestamps, which the default age limit would dead-letter.
    ingest = start_ingest(
        folder, mosquitto, influx, database, client_id, metrics_port=str(metrics_port), max_age_days="36500"
    )

    api_port = free_port()
    database_url = f"sqlite:///{folder / 'registry.sqlite3'}"
    create_test_user(database_url, PIPELINE_ADMIN, PIPELINE_ADMIN_PASSWORD, "admin")
    env = dict(
        os.environ,
        SMARTOFFICE_MQTT_HOST=mosquitto.host,
        SMARTOFFICE_MQTT_PORT=str(mosquitto.port),
        SMARTOFFICE_INFLUX_URL=influx.url,
        SMARTOFFICE_INFLUX_DB=database,
        SMARTOFFICE_API_PORT=str(api_port),
        SMARTOFFICE_DEAD_LETTER_PATH=str(folder / f"{client_id}-dead-letters.sqlite3"),
        SMARTOFFICE_DATABASE_URL=database_url,
        SMARTOFFICE_PSEUDONYM_KEY=TEST_PSEUDONYM_KEY,
        SMARTOFFICE_JWT_SECRET=TEST_JWT_SECRET,
        # Tests publish fixed dates up to years back, which a retention run would delete.
        SMARTOFFICE_ATTENDANCE_RETENTION_DAYS="0",
        SMARTOFFICE_ALERT_RULES_FILE=str(any_hour_alert_rules(folder)),
    )
    api = ManagedProcess("api", [sys.executable, "-m", "api"], folder / "api.log", env=env, cwd=REPO_ROOT)
    api.start()
    api_url = f"http://127.0.0.1:{api_port}"
    api.wait_ready(lambda: _answers(api_url + "/openapi.json"), timeout_s=30)
    headers = {"Authorization": f"Bearer {login(api_url, PIPELINE_ADMIN, PIPELINE_ADMIN_PASSWORD)}"}

    yield Pipeline(
        mosquitto=mosquitto,
        influx=influx,
        database=database,
        ingest=ingest,
        api=api,
        api_url=api_url,
        metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
        dead_letter_path=folder / f"{client_id}-dead-letters.sqlite3",
        database_url=database_url,
        headers=headers,
    )
    api.stop()
    ingest.stop()


def any_hour_alert_rules(folder: Path) -> Path:
    """Write the default alert rules with comfort judged at any hour, so tests do not depend on the clock."""
    rules = yaml.safe_load(DEFAULT_ALERT_RULES.read_text(encoding="utf-8"))
    rules["office_hours_only"] = False
    path = folder / "alert_rules_any_hour.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    return path


def create_test_user(database_url: str, username: str, password: str, role: str, opds: list[str] | None = None) -> None:
    """Add a user to the registry at ``database_url``, migrating it first."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        create_user(session_factory(engine), username, Role(role), opds or [], "", password, "cli:tests")
    finally:
        engine.dispose()


def login(api_url: str, username: str, password: str, verify: bool | str = True) -> str:
    """Log in through ``POST /api/v1/auth/token`` and return the access token."""
    response = httpx.post(
        api_url + "/api/v1/auth/token", data={"username": username, "password": password}, timeout=10.0, verify=verify
    )
    response.raise_for_status()
    return response.json()["access_token"]


def _answers(url: str, verify: bool = True) -> bool:
    try:
        return httpx.get(url, timeout=1.0, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False
