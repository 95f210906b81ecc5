"""Command line of the registry: ``smartoffice-registry upgrade|seed|bootstrap-broker|provision-node|revoke-node``.

``upgrade`` applies the schema migrations; ``seed`` loads the YAML catalogue. Both read the
database URL from ``--database-url`` or ``SMARTOFFICE_DATABASE_URL``.

``bootstrap-broker`` writes the first file of Mosquitto's dynamic security plugin, with the
admin, ingest and API identities. ``provision-node`` and ``revoke-node`` change a node's
identity on the running broker, connecting as the admin: the broker address comes from
``SMARTOFFICE_MQTT_HOST``/``SMARTOFFICE_MQTT_PORT``, the admin password from
``SMARTOFFICE_BROKER_ADMIN_PASSWORD`` (never from the command line, which other users of the
machine can read).
"""

import argparse
import getpass
import json
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from contract.catalogue import CatalogueError, load_catalogue

from .broker_bootstrap import BootstrapError, generate_service_identities, write_bootstrap
from .broker_settings import BrokerAdminSettings
from .db import DEFAULT_URL, make_engine, session_factory, transaction
from .dynsec import DynsecError
from .migrate import upgrade
from .node_credentials import read_node_entries, save_node_credentials
from .provisioning import ProvisioningError, provision_node, revoke_node
from .seed import seed_catalogue


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every registry command."""
    parser = argparse.ArgumentParser(prog="smartoffice-registry", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SMARTOFFICE_DATABASE_URL", DEFAULT_URL),
        help="SQLAlchemy URL of the registry (default: SMARTOFFICE_DATABASE_URL or %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("upgrade", help="apply every schema migration")
    seed = commands.add_parser("seed", help="load OPDs, rooms, nodes and devices from the catalogue")
    seed.add_argument("catalogue", help="path of the YAML catalogue, e.g. config/regency.yaml")

    bootstrap = commands.add_parser(
        "bootstrap-broker", help="write the first dynamic security file with the admin, ingest and API identities"
    )
    bootstrap.add_argument(
        "--dynsec-file", type=Path, required=True, help="plugin file to write (plugin_opt_config_file of the broker)"
    )
    bootstrap.add_argument(
        "--credentials-file",
        type=Path,
        required=True,
        help="file to write the generated service passwords to, mode 0600",
    )
    bootstrap.add_argument(
        "--force", action="store_true", help="replace an existing plugin file, deleting every node identity in it"
    )

    provision = commands.add_parser(
        "provision-node", help="create or rotate a node's broker credentials on the running broker"
    )
    provision.add_argument("opd", help="OPD id, e.g. dinkes")
    provision.add_argument("node", help="node id, e.g. gw-01")
    provision.add_argument(
        "--credentials-file",
        type=Path,
        help="add the credentials to this node credentials file (mode 0600) instead of printing the password",
    )

    revoke = commands.add_parser("revoke-node", help="disable a node's broker identity and disconnect it")
    revoke.add_argument("opd", help="OPD id, e.g. dinkes")
    revoke.add_argument("node", help="node id, e.g. gw-01")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one registry command; return the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "bootstrap-broker":
        return _bootstrap_broker(args)

    upgrade(args.database_url)
    if args.command in ("provision-node", "revoke-node"):
        return _change_node_identity(args)
    if args.command == "seed":
        try:
            catalogue = load_catalogue(args.catalogue)
        except (OSError, CatalogueError) as exc:
            print(f"error: cannot load catalogue {args.catalogue}: {exc}", file=sys.stderr)
            return 2
        engine = make_engine(args.database_url)
        with transaction(session_factory(engine)) as session:
            counts = seed_catalogue(session, catalogue)
        engine.dispose()
        print(f"seeded {counts['opds']} OPDs, {counts['rooms']} rooms, {counts['nodes']} nodes, {counts['devices']} devices")
    return 0


def _bootstrap_broker(args: argparse.Namespace) -> int:
    identities = generate_service_identities()
    try:
        write_bootstrap(args.dynsec_file, args.credentials_file, identities, overwrite=args.force)
    except (BootstrapError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.dynsec_file} with identities {identities.admin.username}, {identities.ingest.username} "
        f"and {identities.api.username}; their passwords are in {args.credentials_file}"
    )
    return 0


def _change_node_identity(args: argparse.Namespace) -> int:
    """Run ``provision-node`` or ``revoke-node``. The password goes to stdout or a 0600 file, never to the log."""
    try:
        settings = BrokerAdminSettings()
        dynsec = settings.admin_client()
    except (ValidationError, ValueError) as exc:
        print(f"error: invalid broker settings: {exc}", file=sys.stderr)
        return 2

    credentials_file = getattr(args, "credentials_file", None)
    if credentials_file is not None:
        # Check the file before the password changes, so that an unusable file costs no rotation.
        try:
            read_node_entries(credentials_file)
        except BootstrapError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    actor = f"cli:{getpass.getuser()}"
    engine = make_engine(args.database_url)
    try:
        with dynsec, transaction(session_factory(engine)) as session:
            if args.command == "revoke-node":
                revoke_node(session, dynsec, args.opd, args.node, actor)
                print(f"revoked node {args.opd}/{args.node}")
                return 0
            credentials = provision_node(session, dynsec, args.opd, args.node, actor)
    except ProvisioningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DynsecError as exc:
        print(f"error: broker {settings.mqtt_host}:{settings.mqtt_port}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()

    if credentials_file is not None:
        try:
            save_node_credentials(credentials_file, [credentials])
        except OSError as exc:
            print(
                f"error: writing {credentials_file} failed: {exc}. The old password no longer works, "
                "so run provision-node again",
                file=sys.stderr,
            )
            return 1
        print(f"provisioned node {args.opd}/{args.node} as {credentials.username}; credentials in {credentials_file}")
        return 0
    output = {
        "username": credentials.username,
        "password": credentials.password,
        "client_id": credentials.client_id,
        "broker": settings.node_broker(),
    }
    print(json.dumps(output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
