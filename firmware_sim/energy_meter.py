"""Energy meter model: power, cumulative energy, voltage, current and frequency of one circuit.

Power is a base load at night (servers, refrigerators, security lights) plus a daytime load
that follows the air conditioning and the share of staff present. ``energy_kwh_total`` is the
meter's import register: it integrates the reported power with the trapezoidal rule, so the
increase between two readings equals the mean of their power times the time between them.
"""

import math
from datetime import UTC, datetime

from contract import Stream

from .devices import DeviceKey, Reading, clamp, encode_payload
from .office_hours import MS_PER_HOUR, MS_PER_S, OfficeConditions, OfficeHours

REGISTER_EPOCH_MS = round(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * MS_PER_S)
"""Time from which the register's start value grows at the meter's maximum power."""

_NOISE_TIME_CONSTANT_S = 120.0
_POWER_NOISE_SHARE = 0.06
_VOLTAGE_NOMINAL_V = 230.0


class EnergyMeter:
    """Deterministic generator of ``energy`` payloads for one single-phase meter."""

    stream = Stream.ENERGY

    def __init__(self, key: DeviceKey, circuit: str | None, office_hours: OfficeHours, staff: int) -> None:
        """Size the circuit for ``staff`` people, the employees whose rooms it supplies."""
        self.key = key
        self.circuit = circuit
        self._hours = office_hours

        parameters = key.random("parameters")
        self.base_load_w = (200.0 + 4.0 * staff) * parameters.uniform(0.8, 1.2)
        self.day_load_w = (1200.0 + 35.0 * staff) * parameters.uniform(0.8, 1.2)
        self.max_power_w = 1.4 * (self.base_load_w + self.day_load_w)
        self.min_power_w = 0.5 * self.base_load_w
        self.register_offset_kwh = parameters.uniform(1_500.0, 25_000.0)

        self._noise = key.random("noise")
        self._seq = 0
        self._last_ts_ms: int | None = None
        self._last_power_w = 0.0
        self._energy_kwh = 0.0
        self._power_noise = 0.0
        self._voltage_noise_v = 0.0
        self._frequency_noise_hz = 0.0

    def register_start_kwh(self, ts_ms: int) -> float:
        """Return the register value of a meter first read at ``ts_ms``.

        The value grows with ``ts_ms`` at the meter's maximum power, faster than the meter can
        count, so a simulator restarted later never reports a lower register than the one it
        stopped at. Consumers would otherwise see a meter reset.
        """
        hours_since_epoch = max(0, ts_ms - REGISTER_EPOCH_MS) / MS_PER_HOUR
        return self.register_offset_kwh + self.max_power_w / 1000.0 * hours_since_epoch

    def target_power_w(self, conditions: OfficeConditions) -> float:
        """Return the expected power in the given office conditions, before noise."""
        cooling_share = 0.35 if conditions.air_conditioning else 0.0
        return self.base_load_w + self.day_load_w * (cooling_share + 0.65 * conditions.presence)

    def reading(self, ts_ms: int) -> Reading:
        """Advance the meter to ``ts_ms`` and return its payload at that time."""
        conditions = self._hours.conditions(ts_ms)
        presence = conditions.presence
        elapsed_s = 0.0 if self._last_ts_ms is None else (ts_ms - self._last_ts_ms) / MS_PER_S
        self._update_noise(elapsed_s)

        power_w = clamp(self.target_power_w(conditions) * (1.0 + self._power_noise), self.min_power_w, self.max_power_w)
        power_w = round(power_w, 1)
        if self._last_ts_ms is None:
            self._energy_kwh = self.register_start_kwh(ts_ms)
        else:
            self._energy_kwh += (self._last_power_w + power_w) / 2.0 * elapsed_s / 3_600_000.0
        self._last_ts_ms = ts_ms
        self._last_power_w = power_w

        # The supply sags a little under the daytime load of the office.
        voltage_v = clamp(_VOLTAGE_NOMINAL_V - 4.0 * presence + self._voltage_noise_v, 220.0, 235.0)
        power_factor = clamp(0.88 + 0.07 * presence + self._noise.gauss(0.0, 0.005), 0.8, 0.99)
        current_a = power_w / (voltage_v * power_factor)
        frequency_hz = clamp(50.0 + self._frequency_noise_hz, 49.8, 50.2)

        payload = {
            "device": self.key.device,
            "ts": ts_ms,
            "circuit": self.circuit,
            "seq": self._seq,
            "power_w": power_w,
            "energy_kwh_total": round(self._energy_kwh, 3),
            "voltage_v": round(voltage_v, 1),
            "current_a": round(current_a, 3),
            "power_factor": round(power_factor, 3),
            "frequency_hz": round(frequency_hz, 2),
        }
        if self.circuit is None:
            del payload["circuit"]

        self._seq += 1
        return Reading(ts_ms, Stream.ENERGY, encode_payload(payload))

    def _update_noise(self, elapsed_s: float) -> None:
        """Step the slow random walks of power, voltage and frequency (AR(1) processes)."""
        keep = math.exp(-elapsed_s / _NOISE_TIME_CONSTANT_S) if elapsed_s > 0 else 0.0
        spread = math.sqrt(1.0 - keep * keep)
        noise = self._noise
        self._power_noise = keep * self._power_noise + spread * noise.gauss(0.0, _POWER_NOISE_SHARE)
        self._voltage_noise_v = keep * self._voltage_noise_v + spread * noise.gauss(0.0, 1.5)
        self._frequency_noise_hz = keep * self._frequency_noise_hz + spread * noise.gauss(0.0, 0.03)
