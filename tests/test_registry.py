"""Registry schema: migrations match the models, and the catalogue seeds idempotently."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from contract.catalogue import load_catalogue
from registry.__main__ import main as registry_main
from registry.db import make_engine, session_factory, transaction
from registry.migrate import upgrade
from registry.models import Base, Device, Node, Opd
from registry.seed import seed_catalogue

from api.config import DEFAULT_CATALOGUE


def test_migrations_match_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    upgrade(url)

    engine = make_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_upgrade_twice_is_harmless(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    upgrade(url)
    upgrade(url)


def test_seed_catalogue_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    factory = session_factory(engine)
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    expected_devices = sum(len(node.devices) for opd in catalogue.opds for node in opd.nodes)

    for _ in range(2):
        with transaction(factory) as session:
            seed_catalogue(session, catalogue)

    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Opd)) == len(catalogue.opds)
        assert session.scalar(select(func.count()).select_from(Device)) == expected_devices
        node = session.scalar(select(Node).join(Opd).where(Opd.key == "setda", Node.key == "gw-01"))
        assert node is not None
        assert {device.key for device in node.devices} >= {"absen-01", "meter-01"}
    engine.dispose()


def test_registry_cli_seed(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    status = registry_main(["--database-url", url, "seed", str(DEFAULT_CATALOGUE)])
    assert status == 0
    assert "seeded 13 OPDs" in capsys.readouterr().out


def test_registry_cli_missing_catalogue(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    status = registry_main(["--database-url", url, "seed", str(tmp_path / "absent.yaml")])
    assert status == 2
    assert "absent.yaml" in capsys.readouterr().err
