"""Entry point: ``python -m edge --config edge.yaml`` or ``smartoffice-edge --config edge.yaml``."""

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from .agent import EdgeAgent
from .config import ConfigError, load_config
from .node_settings import SettingsError, parse_node_settings

logger = logging.getLogger("edge")

CONFIG_ENV = "SMARTOFFICE_EDGE_CONFIG"


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="smartoffice-edge",
        description="Edge gateway agent of one office: reads its devices and forwards contract v1 readings.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=os.environ.get(CONFIG_ENV),
        help=f"YAML configuration file (default: ${CONFIG_ENV}); SMARTOFFICE_EDGE_* variables override its keys",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate the configuration and its settings, print a summary and exit",
    )
    return parser.parse_args(argv)


async def _run(agent: EdgeAgent) -> int:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, agent.stop)
    return await agent.run()


def main(argv: list[str] | None = None) -> int:
    arguments = _parse_arguments(argv)
    try:
        config = load_config(arguments.config)
        password = config.broker.resolved_password()
        file_settings = parse_node_settings(config.settings, config.timezone)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"invalid settings in {arguments.config}: {exc}", file=sys.stderr)
        return 2

    if arguments.check:
        adapters = ", ".join(f"{adapter.id} ({adapter.type})" for adapter in file_settings.adapters) or "none"
        print(f"configuration valid: opd {config.opd}, node {config.node}, adapters: {adapters}")
        return 0

    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    agent = EdgeAgent(config, file_settings, password)
    return asyncio.run(_run(agent))


if __name__ == "__main__":
    sys.exit(main())
