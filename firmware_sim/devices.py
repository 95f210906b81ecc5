"""Identity, random streams and payload encoding shared by the simulated devices.

The generators in ``room_sensor``, ``energy_meter`` and ``attendance`` are deterministic: they
never read the wall clock or the global ``random`` module. Each takes the virtual time of a
reading as an argument and draws noise from a ``random.Random`` derived from the run's seed
and the device's identity, so one device's payloads do not depend on which other devices run.
"""

import json
import math
import random
from dataclasses import dataclass
from typing import Any

from contract import Stream


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """Identity of a device in the regency (OPD, node and device id) and the seed of the run."""

    seed: int
    opd: str
    node: str
    device: str

    def random(self, purpose: str) -> random.Random:
        """Return a random stream for one purpose of this device (noise, parameters, a day's plan).

        ``random.Random`` turns a ``str`` seed into an integer from its bytes and their SHA-512
        digest, not from ``hash()``, so the stream does not depend on PYTHONHASHSEED.
        NOTE: Python keeps the sequence of ``random()`` for a seed stable across versions, but
        not necessarily that of ``gauss`` or ``randrange``. Byte-identical output is therefore
        only checked within one Python version.
        """
        return random.Random(f"{self.seed}/{self.opd}/{self.node}/{self.device}/{purpose}")


@dataclass(frozen=True, slots=True)
class Reading:
    """One generated payload of a device, at virtual time ``ts_ms``."""

    ts_ms: int
    stream: Stream
    payload: bytes


def encode_payload(fields: dict[str, Any]) -> bytes:
    """Serialise a payload as compact UTF-8 JSON, keeping the field order of ``fields``."""
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def approach(current: float, target: float, elapsed_s: float, time_constant_s: float) -> float:
    """Move ``current`` toward ``target`` as a first-order lag with the given time constant.

    The step depends on the elapsed time, so the curve has the same shape whatever the
    reading interval is.
    """
    if elapsed_s <= 0:
        return current
    return target + (current - target) * math.exp(-elapsed_s / time_constant_s)


def clamp(value: float, low: float, high: float) -> float:
    """Limit ``value`` to the closed range from ``low`` to ``high``."""
    return min(high, max(low, value))
