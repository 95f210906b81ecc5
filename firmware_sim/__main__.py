"""Command line of the device simulator (console script ``smartoffice-sim``).

Exit status: 0 after a normal end or SIGINT/SIGTERM, 2 for an invalid option, setting or
catalogue.
"""

import argparse
import logging
import signal
import sys
import threading
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from contract.catalogue import CatalogueError, load_catalogue

from .clock import WallClock, format_ms, parse_start
from .config import SimSettings
from .credentials import CredentialsFileError, load_credentials_file
from .office_hours import MS_PER_HOUR
from .publisher import Publisher
from .regency import UnknownOpdError, build_regency
from .runner import ProgressLog, run_live, run_load
from .timeline import Timeline

logger = logging.getLogger("firmware_sim")

DEFAULT_SEED = 1
DEFAULT_INTERVAL_S = 10.0
DEFAULT_BACKFILL_RATE = 5_000.0
CONNECT_TIMEOUT_S = 10.0


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is invalid: use a number above 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is invalid: use a whole number of at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser. The broker and the catalogue are set by SMARTOFFICE_* variables."""
    parser = argparse.ArgumentParser(
        prog="smartoffice-sim",
        description=(
            "Simulate the room sensors, energy meters and attendance terminals of the catalogue's OPDs "
            "and publish their readings over MQTT. The broker is set by SMARTOFFICE_MQTT_HOST and "
            "SMARTOFFICE_MQTT_PORT, the catalogue by SMARTOFFICE_CATALOGUE_FILE."
        ),
    )
    parser.add_argument(
        "--opd", action="append", metavar="ID", help="simulate only this OPD id; repeat for several (default: all)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"seed of every random stream (default: {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--interval-s",
        type=_positive_float,
        default=DEFAULT_INTERVAL_S,
        help=f"seconds between two readings of a room sensor or meter (default: {DEFAULT_INTERVAL_S:g})",
    )

    parser.add_argument(
        "--rate",
        type=_positive_float,
        metavar="N",
        help="load mode: publish N messages per second in total, with timestamps running ahead of the clock",
    )
    parser.add_argument("--count", type=_positive_int, metavar="M", help="stop after M telemetry messages")
    parser.add_argument(
        "--start",
        metavar="ISO",
        help="load mode: virtual time of the first reading, e.g. 2025-01-14T07:00 (local time "
        "of the catalogue's zone) or 2025-01-14T00:00Z (default: now)",
    )
    parser.add_argument(
        "--backfill-hours",
        type=_positive_float,
        metavar="H",
        help="live mode: first publish the last H hours of readings, then go on live",
    )
    parser.add_argument(
        "--backfill-rate",
        type=_positive_float,
        default=DEFAULT_BACKFILL_RATE,
        metavar="N",
        help=f"messages per second while backfilling (default: {DEFAULT_BACKFILL_RATE:g})",
    )

    parser.add_argument(
        "--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR (default: SMARTOFFICE_LOG_LEVEL or INFO)"
    )
    return parser


def _check_mode_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.start is not None and args.rate is None:
        parser.error("--start needs --rate: in live mode the readings start now")
    if args.backfill_hours is not None and args.rate is not None:
        parser.error("--backfill-hours works in live mode only: drop --rate, or use --start in load mode")


def _describe_setting_error(exc: ValidationError) -> str:
    """Describe the first invalid setting, showing its value unless it is a password."""
    error = exc.errors()[0]
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        return f"invalid settings: {message}"

    name = "SMARTOFFICE_" + "_".join(str(part) for part in error["loc"]).upper()
    if "PASSWORD" in name:
        return f"invalid setting {name}: {message}"
    return f"invalid setting {name}={error.get('input')!r}: {message}"


def _install_signal_handlers(stop: threading.Event) -> None:
    def set_stop(name: str) -> None:
        if not stop.is_set():
            logger.info("received %s, stopping", name)
        stop.set()

    def request_stop(signum: int, frame) -> None:
        # The handler runs in the main thread, which may be inside stop.wait() holding the
        # event's non-reentrant lock, so the event is set from a new thread instead.
        threading.Thread(target=set_stop, args=(signal.Signals(signum).name,), daemon=True).start()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until its message count is reached or a signal stops it."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_mode_options(parser, args)
    stop = threading.Event()
    _install_signal_handlers(stop)

    try:
        settings = SimSettings()
    except ValidationError as exc:
        print(f"smartoffice-sim: {_describe_setting_error(exc)}", file=sys.stderr)
        return 2

    logging.basicConfig(
        level=(args.log_level or settings.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    try:
        catalogue = load_catalogue(settings.catalogue_file)
        regency = build_regency(catalogue, args.seed, args.opd)
    except CatalogueError as exc:
        logger.error("%s; set SMARTOFFICE_CATALOGUE_FILE to a valid catalogue", exc)
        return 2
    except UnknownOpdError as exc:
        logger.error("%s (catalogue %s)", exc, settings.catalogue_file)
        return 2
    if settings.excluded_nodes:
        _exclude_nodes(regency, settings.excluded_nodes)

    credentials = {}
    if settings.sim_credentials_file is not None:
        try:
            credentials = load_credentials_file(settings.sim_credentials_file)
        except CredentialsFileError as exc:
            logger.error("%s. Fix SMARTOFFICE_SIM_CREDENTIALS_FILE", exc)
            return 2
        missing = [f"{node.opd}/{node.node}" for node in regency.nodes if (node.opd, node.node) not in credentials]
        if missing:
            logger.warning(
                "%d nodes have no entry in %s and connect as %s: %s",
                len(missing), settings.sim_credentials_file, settings.mqtt_username or "anonymous", ", ".join(missing),
            )

    zone = ZoneInfo(catalogue.regency.timezone)
    clock = WallClock()
    try:
        start_ms = _start_ms(args, clock, zone)
    except ValueError as exc:
        parser.error(str(exc))

    timeline = Timeline(regency, start_ms, args.interval_s)
    return _run(args, settings, regency, timeline, clock, zone, stop, credentials)


def _exclude_nodes(regency, excluded: set[tuple[str, str]]) -> None:
    """Drop the ``excluded`` nodes from ``regency``, so that another publisher can own their client ids."""
    simulated = {(node.opd, node.node) for node in regency.nodes}
    regency.nodes = [node for node in regency.nodes if (node.opd, node.node) not in excluded]
    skipped = sorted(f"{opd}/{node}" for opd, node in excluded & simulated)
    unknown = sorted(f"{opd}/{node}" for opd, node in excluded - simulated)
    if skipped:
        logger.info("not simulating %d nodes of SMARTOFFICE_SIM_EXCLUDE_NODES: %s", len(skipped), ", ".join(skipped))
    if unknown:
        logger.warning(
            "SMARTOFFICE_SIM_EXCLUDE_NODES lists nodes that are not simulated anyway: %s", ", ".join(unknown)
        )


def _start_ms(args: argparse.Namespace, clock: WallClock, zone: ZoneInfo) -> int:
    if args.start is not None:
        return parse_start(args.start, zone)
    if args.backfill_hours is not None:
        return clock.now_ms() - round(args.backfill_hours * MS_PER_HOUR)
    return clock.now_ms()


def _run(
    args, settings, regency, timeline: Timeline, clock: WallClock, zone: ZoneInfo, stop: threading.Event, credentials
) -> int:
    mode = "load" if args.rate is not None else "live"
    logger.info(
        "starting %s mode: %d OPDs, %d nodes, %d devices, seed %d, reading interval %g s, first reading at %s (%s)",
        mode, len({node.opd for node in regency.nodes}), len(regency.nodes), regency.device_count(), args.seed,
        args.interval_s, format_ms(timeline.start_ms, zone), zone.key,
    )

    publisher = Publisher(regency.nodes, settings, credentials=credentials)
    publisher.start()
    connected = publisher.wait_connected(CONNECT_TIMEOUT_S, stop)
    if connected < len(publisher.clients) and not stop.is_set():
        logger.warning(
            "%d of %d nodes connected within %.0f s; the others keep retrying and queue their messages",
            connected, len(publisher.clients), CONNECT_TIMEOUT_S,
        )

    progress = ProgressLog(publisher, zone)
    progress.start()
    try:
        if mode == "load":
            logger.info("publishing %s messages at %g msg/s", args.count or "unlimited", args.rate)
            run_load(timeline, publisher, stop, args.rate, args.count, progress)
        else:
            if args.backfill_hours is not None:
                logger.info("backfilling %g h of history at up to %g msg/s", args.backfill_hours, args.backfill_rate)
            run_live(timeline, publisher, stop, progress, clock, args.count, args.backfill_rate)
    finally:
        progress.stop()
        publisher.close(settings.sim_shutdown_timeout_s)

    logger.info("simulator stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
