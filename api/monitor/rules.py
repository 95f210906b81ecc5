"""Alert rules: comfort limits per room measurement, liveness timeouts, expected intervals.

Loaded from a YAML file (``config/alert_rules.yaml`` by default) at start-up, so an invalid
file stops the API with a message that names the bad key.
"""

from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contract.catalogue import CatalogueError


class Severity(StrEnum):
    """Urgency of an alert."""

    WARNING = "warning"
    CRITICAL = "critical"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Levels(_Strict):
    """Warning and critical level of one side of a limit."""

    warning: float
    critical: float | None = None


class ComfortRule(_Strict):
    """Limits of one room measurement; a value above ``high`` or below ``low`` is out of range."""

    high: Levels | None = None
    low: Levels | None = None
    hysteresis: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.high and self.high.critical is not None and self.high.critical < self.high.warning:
            raise ValueError(f"high.critical {self.high.critical} is below high.warning {self.high.warning}")
        if self.low and self.low.critical is not None and self.low.critical > self.low.warning:
            raise ValueError(f"low.critical {self.low.critical} is above low.warning {self.low.warning}")
        if self.high and self.low and self.low.warning >= self.high.warning:
            raise ValueError(f"low.warning {self.low.warning} must be below high.warning {self.high.warning}")
        return self


COMFORT_MEASUREMENTS = ("co2_ppm", "temperature_c", "humidity_pct")
"""Room reading fields that may carry comfort limits."""


class OpdRules(_Strict):
    """Comfort limits of one OPD that replace the defaults, by measurement."""

    comfort: dict[str, ComfortRule] = Field(default_factory=dict)


class AlertRules(_Strict):
    """Contents of the alert rules file."""

    comfort: dict[str, ComfortRule] = Field(default_factory=dict)
    min_duration_s: int = Field(120, ge=0, le=86_400)
    office_hours_only: bool = True
    device_offline_s: int = Field(900, ge=1)
    node_offline_s: int = Field(300, ge=1)
    expected_interval_s: dict[str, int] = Field(default_factory=dict)
    opds: dict[str, OpdRules] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_measurements(self):
        tables = [("comfort", self.comfort)] + [(f"opds.{opd}.comfort", own.comfort) for opd, own in self.opds.items()]
        for where, table in tables:
            for name in table:
                if name not in COMFORT_MEASUREMENTS:
                    known = ", ".join(COMFORT_MEASUREMENTS)
                    raise ValueError(f"{where}: unknown measurement {name!r}; use one of {known}")
        return self

    def comfort_rule(self, opd: str, measurement: str) -> ComfortRule | None:
        """Return the limits of ``measurement`` in ``opd``: the OPD's own, else the default."""
        own = self.opds.get(opd)
        if own is not None and measurement in own.comfort:
            return own.comfort[measurement]
        return self.comfort.get(measurement)


def comfort_limits(rules: AlertRules, opd: str) -> tuple[tuple[str, str, float], ...]:
    """Return the warning levels of ``opd`` as ``(field, ">" or "<", limit)``, as the overview uses them."""
    limits = []
    for measurement in COMFORT_MEASUREMENTS:
        rule = rules.comfort_rule(opd, measurement)
        if rule is None:
            continue
        if rule.high is not None:
            limits.append((measurement, ">", rule.high.warning))
        if rule.low is not None:
            limits.append((measurement, "<", rule.low.warning))
    return tuple(limits)


def load_alert_rules(path: Path) -> AlertRules:
    """Read and validate the rules file.

    Raises:
        CatalogueError: the file is missing, not YAML, or breaks the schema; the message names
            the file and the key at fault.
    """
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read alert rules {path}: {exc}") from None

    try:
        return AlertRules.model_validate(document or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}" for error in exc.errors()
        )
        raise CatalogueError(f"invalid alert rules {path}: {problems}") from None
