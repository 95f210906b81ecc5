"""The registry on a real PostgreSQL server: migrations, seeding, alerts and node configurations."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from api.config import DEFAULT_CATALOGUE
from api.monitor.alert_store import AlertStore, NewAlert
from api.monitor.node_states import NodeConfigStore, NodeStateStore
from contract.catalogue import load_catalogue
from postgres_helpers import PostgresServer, postgres_bin
from registry.db import make_engine, session_factory, transaction
from registry.migrate import upgrade
from registry.models import Base
from registry.seed import seed_catalogue

pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL server binaries are not installed")


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    server.start()
    yield server
    server.stop()


def test_postgres_migrations_match_models(postgres):
    upgrade(postgres.url)
    upgrade(postgres.url)

    engine = make_engine(postgres.url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_postgres_registry_round_trip(postgres):
    upgrade(postgres.url)
    engine = make_engine(postgres.url)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        counts = seed_catalogue(session, load_catalogue(DEFAULT_CATALOGUE))
    assert counts["opds"] == 13

    alerts = AlertStore(sessions)
    opened = alerts.open(NewAlert("dinkes", "co2_high", "sensor-1/co2_ppm", "warning", 1_796_000_000_000, value=1100.0))
    again = alerts.open(NewAlert("dinkes", "co2_high", "sensor-1/co2_ppm", "warning", 1_796_000_060_000, value=1200.0))
    assert again.id == opened.id
    alerts.update("dinkes", "co2_high", "sensor-1/co2_ppm", "critical", 1600.0)
    closed = alerts.close("dinkes", "co2_high", "sensor-1/co2_ppm", 1_796_000_600_000)
    assert closed.peak_value == 1600.0
    assert closed.ended_at_ms == 1_796_000_600_000

    configs = NodeConfigStore(sessions)
    first = configs.add("dinkes", "gw-01", {"heartbeat_s": 60}, "admin", 1_796_000_000_000)
    second = configs.add("dinkes", "gw-01", {"heartbeat_s": 30, "adapters": []}, "admin", 1_796_000_100_000)
    assert (first.version, second.version) == (1, 2)
    assert configs.latest("dinkes", "gw-01").settings == {"heartbeat_s": 30, "adapters": []}

    states = NodeStateStore(sessions)
    states.record_status("dinkes", "gw-01", "online", 1_796_000_000_000, 1_796_000_000_100, {"sw_version": "0.1.0"})
    states.record_report("dinkes", "gw-01", 2, "applied", None, 1_796_000_100_500)
    state = states.get("dinkes", "gw-01")
    assert state.reported_version == 2
    assert state.status == {"sw_version": "0.1.0"}
    engine.dispose()
