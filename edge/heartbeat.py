"""The node's retained status: its payload and the periodic heartbeat that publishes and logs it."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from importlib import metadata

from contract import TS_MAX_MS, TS_MIN_MS, NodeState, NodeStatus, is_valid_id

from .adapters.base import AdapterStats

logger = logging.getLogger(__name__)

OFFLINE_PAYLOAD = b'{"state":"offline"}'
"""Last will on the node's ``status`` topic, retained, and the status published at a clean stop."""

MAX_DEVICES_REPORTED = 500
"""Maximum devices in ``NodeStatus.device_last_seen``, fixed by the contract. The most recent are kept."""


def software_version() -> str:
    """Return the installed version of the ``smartoffice`` package, for ``sw_version``."""
    try:
        return metadata.version("smartoffice")
    except metadata.PackageNotFoundError:
        return "0.0.0"


SW_VERSION = software_version()


def merge_last_seen(all_stats: Iterable[AdapterStats]) -> dict[str, int]:
    """Merge the adapters' ``last_seen_ms`` into one map, keeping the newest time of each device.

    Devices with an invalid id or a time outside the contract's range are left out, so the
    status always validates.
    """
    merged: dict[str, int] = {}
    for stats in all_stats:
        for device, ts_ms in stats.last_seen_ms.items():
            if not is_valid_id(device) or not TS_MIN_MS <= ts_ms < TS_MAX_MS:
                continue
            if ts_ms > merged.get(device, 0):
                merged[device] = ts_ms

    if len(merged) > MAX_DEVICES_REPORTED:
        newest = sorted(merged.items(), key=lambda item: item[1], reverse=True)[:MAX_DEVICES_REPORTED]
        merged = dict(newest)
    return merged


def online_status(
    *,
    uptime_s: float,
    queue_depth: int,
    dropped_total: int,
    config_version: int | None,
    device_last_seen: dict[str, int],
) -> bytes:
    """Build the retained online status as ``NodeStatus`` JSON, with the current time as ``ts``."""
    status = NodeStatus(
        state=NodeState.ONLINE,
        ts=time.time_ns() // 1_000_000,
        sw_version=SW_VERSION,
        uptime_s=int(uptime_s),
        queue_depth=queue_depth,
        dropped_total=dropped_total,
        config_version=config_version,
        device_last_seen=device_last_seen or None,
    )
    return status.model_dump_json(exclude_none=True).encode()


class Heartbeat:
    """Call ``beat`` now and then every ``interval_s()`` seconds, until cancelled."""

    def __init__(self, interval_s: Callable[[], float], beat: Callable[[], Awaitable[None]]) -> None:
        self._interval_s = interval_s
        self._beat = beat
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Beat at once and restart the interval, after the interval setting changed."""
        self._wakeup.set()

    async def run(self) -> None:
        """Beat until cancelled. A failing beat is logged, and the next one still runs."""
        while True:
            try:
                await self._beat()
            except Exception:
                logger.exception("heartbeat failed; the next one runs in %.0f s", self._interval_s())

            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._interval_s())
            except TimeoutError:
                pass
