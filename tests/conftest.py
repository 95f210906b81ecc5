"""Fixtures that start real Mosquitto and InfluxDB processes on free loopback ports.

Both servers live for the whole session in a temporary folder; each test that writes data
gets a database of its own (``influx_db``) and OPD ids of its own, so tests never see each
other's points.
"""

import uuid
from pathlib import Path

import pytest

from devstack import InfluxServer, MosquittoServer

REPO_ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = REPO_ROOT.parent / "shared" / "cases"


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
