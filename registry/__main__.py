"""Command line of the registry: ``smartoffice-registry upgrade|seed``.

``upgrade`` applies the schema migrations; ``seed`` loads the YAML catalogue. Both read the
database URL from ``--database-url`` or ``SMARTOFFICE_DATABASE_URL``.
"""

import argparse
import logging
import os
import sys

from contract.catalogue import CatalogueError, load_catalogue

from .db import DEFAULT_URL, make_engine, session_factory, transaction
from .migrate import upgrade
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one registry command; return the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    upgrade(args.database_url)
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


if __name__ == "__main__":
    sys.exit(main())
