"""Broker identities of the local platform: the service logins, and one login per catalogue node.

Files under the local folder, each with mode 0600:

* ``mosquitto/dynamic-security.json``: the dynamic security plugin's clients and roles.
* ``credentials/services.json``: passwords of the admin, ingest and API identities.
* ``credentials/nodes.json``: the node credentials file the simulator reads.

The first start writes the plugin file and the service passwords. Every start provisions
the catalogue nodes that have no entry in ``nodes.json`` yet, on the running broker, and
keeps the others, so a restart does not change passwords. A node revoked in the registry
stays revoked. Passwords are never logged.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from contract.catalogue import Catalogue
from registry.broker_bootstrap import (
    ServiceIdentities,
    generate_service_identities,
    load_service_identities,
    write_bootstrap,
)
from registry.db import make_engine, session_factory, transaction
from registry.dynsec import DynsecClient
from registry.migrate import upgrade
from registry.node_credentials import read_node_entries, save_node_credentials
from registry.provisioning import find_node, provision_node
from registry.seed import seed_catalogue

logger = logging.getLogger(__name__)

PROVISIONING_ACTOR = "devstack"
"""Actor of the local platform's provisioning in the registry's audit log."""


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Files of the broker identities in a local folder."""

    dynsec_file: Path
    services_file: Path
    nodes_file: Path

    @classmethod
    def under(cls, local_dir: Path) -> "BrokerFiles":
        """Return the files of the local folder ``local_dir``."""
        credentials = Path(local_dir) / "credentials"
        return cls(
            dynsec_file=Path(local_dir) / "mosquitto" / "dynamic-security.json",
            services_file=credentials / "services.json",
            nodes_file=credentials / "nodes.json",
        )


def prepare_service_identities(files: BrokerFiles) -> ServiceIdentities:
    """Return the service identities, writing a new plugin file when either file is missing.

    A new plugin file contains no node, so the node credentials file is deleted with it, and the
    next provisioning gives every node a new password.
    """
    if files.dynsec_file.exists() and files.services_file.exists():
        return load_service_identities(files.services_file)

    identities = generate_service_identities()
    write_bootstrap(files.dynsec_file, files.services_file, identities, overwrite=True)
    files.nodes_file.unlink(missing_ok=True)
    logger.info(
        "wrote broker identities %s, %s and %s to %s, with their passwords in %s",
        identities.admin.username, identities.ingest.username, identities.api.username,
        files.dynsec_file, files.services_file,
    )
    return identities


def provision_catalogue_nodes(database_url: str, catalogue: Catalogue, dynsec: DynsecClient, nodes_file: Path) -> int:
    """Provision every catalogue node without credentials in ``nodes_file`` and return how many were provisioned.

    The registry is migrated and seeded from ``catalogue`` first. Each node's credentials are
    written to ``nodes_file`` before its registry transaction commits, so a failure never
    leaves a broker password that no file holds.
    """
    upgrade(database_url)
    engine = make_engine(database_url)
    factory = session_factory(engine)
    try:
        with transaction(factory) as session:
            seed_catalogue(session, catalogue)

        known = read_node_entries(nodes_file)
        provisioned = 0
        for opd in catalogue.opds:
            for node in opd.nodes:
                with transaction(factory) as session:
                    row = find_node(session, opd.id, node.id)
                    if row.revoked_at_ms is not None:
                        logger.warning(
                            "node %s/%s is revoked in the registry, so it is not provisioned", opd.id, node.id
                        )
                        continue
                    if f"{opd.id}/{node.id}" in known and row.provisioned_at_ms is not None:
                        continue
                    credentials = provision_node(session, dynsec, opd.id, node.id, PROVISIONING_ACTOR)
                    save_node_credentials(nodes_file, [credentials])
                    provisioned += 1
    finally:
        engine.dispose()
    return provisioned
