/**
 * Room comfort: labels and limits of the comfort fields. The limits come from /api/v1/meta
 * (the warning levels of the API's alert rules), so the dashboard marks the same readings
 * that the API's overview and alerts count as uncomfortable.
 */

import { formatNumber } from "../format.js";
import { t } from "../i18n.js";

/** Comfort fields of a room reading, with unit and decimals shown. */
export const COMFORT_FIELDS = [
  { field: "temperature_c", unit: "°C", decimals: 1 },
  { field: "humidity_pct", unit: "%", decimals: 1 },
  { field: "co2_ppm", unit: "ppm", decimals: 0 },
];

const UNITS = Object.fromEntries(COMFORT_FIELDS.map((item) => [item.field, item]));

/** Describe one breach of /api/v1/overview's worst_room: "CO₂ 1.200 ppm (batas > 1.000)". */
export function breachText(breach) {
  const unit = UNITS[breach.field] ?? { unit: "", decimals: 1 };
  const match = /^([<>]=?)\s*(-?[\d.]+)$/.exec(breach.limit);
  const limit = match ? `${match[1]} ${formatNumber(Number(match[2]), unit.decimals)}` : breach.limit;
  return t("comfort.breach", {
    field: t(`field.${breach.field}`),
    value: `${formatNumber(breach.value, unit.decimals)} ${unit.unit}`.trim(),
    limit,
  });
}

/** Return the comfort limits of `opd` from /api/v1/meta: its own, else the deployment's. */
export function comfortLimitsOf(meta, opd) {
  return meta.comfort_by_opd?.[opd] ?? meta.comfort;
}

/** Return true when `value` of `field` breaks one of `limits` ([{field, side, limit}]). A value equal to a limit is inside it. */
export function isUncomfortable(field, value, limits) {
  if (value === null || value === undefined) {
    return false;
  }
  return limits.some((item) => item.field === field && (item.side === ">" ? value > item.limit : value < item.limit));
}

/** Describe limits for people: "CO₂ > 1.000 ppm, Suhu > 27 °C". */
export function limitsText(limits) {
  return limits
    .map((item) => {
      const unit = UNITS[item.field] ?? { unit: "", decimals: 1 };
      return `${t(`field.${item.field}`)} ${item.side} ${formatNumber(item.limit, unit.decimals)} ${unit.unit}`.trim();
    })
    .join(", ");
}
