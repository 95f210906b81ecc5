/**
 * Numbers, money, dates and times in the current language's format, with Intl.
 *
 * Times are shown in the deployment's zone (from /api/v1/meta), not the browser's, and carry
 * the zone's abbreviation: "08.10 WIB". Numbers round half away from zero, as Intl does.
 */

import { currentLocale, t } from "./i18n.js";

/** Text shown for a missing value. */
export const EMPTY = "—";

let zone = "Asia/Jakarta";
let zoneAbbreviation = "WIB";

/** Set the zone of every date and time shown, e.g. ("Asia/Jakarta", "WIB"). */
export function configureZone(timezone, abbreviation) {
  zone = timezone;
  zoneAbbreviation = abbreviation;
}

export function zoneName() {
  return zone;
}

export function zoneLabel() {
  return zoneAbbreviation;
}

/** Return the zone's offset from UTC at `value` (default now), ms: 25200000 for WIB. */
export function zoneOffsetMs(value = new Date()) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
  }).formatToParts(toDate(value));
  const part = (type) => Number(parts.find((item) => item.type === type).value);
  const wallClock = Date.UTC(part("year"), part("month") - 1, part("day"), part("hour"), part("minute"), part("second"));
  const moment = toDate(value).getTime();
  return wallClock - (moment - (moment % 1000));
}

/** Format a number with at most `maxDecimals` decimals: 1699.5311 → "1.699,53" in Indonesian. */
export function formatNumber(value, maxDecimals = 2, minDecimals = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) {
    return EMPTY;
  }
  return new Intl.NumberFormat(currentLocale(), {
    minimumFractionDigits: minDecimals,
    maximumFractionDigits: maxDecimals,
  }).format(value);
}

/** Format a ratio as a percentage: 0.0375 → "3,8%". */
export function formatPercent(ratio, maxDecimals = 1) {
  if (ratio === null || ratio === undefined) {
    return EMPTY;
  }
  return new Intl.NumberFormat(currentLocale(), { style: "percent", maximumFractionDigits: maxDecimals }).format(ratio);
}

/** Format a change as a signed percentage: 0.225 → "+22,5%", -0.1 → "-10%". */
export function formatChange(ratio, maxDecimals = 0) {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) {
    return EMPTY;
  }
  return new Intl.NumberFormat(currentLocale(), {
    style: "percent",
    maximumFractionDigits: maxDecimals,
    signDisplay: "exceptZero",
  }).format(ratio);
}

/** Format Rupiah with exactly `decimals` decimals: 1699.53 with 2 → "Rp 1.699,53". */
export function formatRupiah(value, decimals = 0) {
  if (value === null || value === undefined) {
    return EMPTY;
  }
  return new Intl.NumberFormat(currentLocale(), {
    style: "currency",
    currency: "IDR",
    currencyDisplay: "narrowSymbol",
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  }).format(value);
}

/** Format a quantity with its unit: (25.4, "°C", 1) → "25,4 °C". */
export function formatQuantity(value, unit, maxDecimals = 1) {
  if (value === null || value === undefined) {
    return EMPTY;
  }
  return `${formatNumber(value, maxDecimals)} ${unit}`;
}

/** Format a date (ISO text, epoch ms or Date) in the zone: "13 Maret 2019". */
export function formatDate(value) {
  return formatParts(value, { day: "numeric", month: "long", year: "numeric" });
}

/** Format a date without the year: "13 Mar". */
export function formatShortDate(value) {
  return formatParts(value, { day: "numeric", month: "short" });
}

/** Format the weekday of a moment in the zone: "Senin". */
export function formatWeekday(value) {
  return formatParts(value, { weekday: "long" });
}

/** Format the wall-clock time without the zone: "08.10" in Indonesian, "08:10" in English. */
export function formatClock(value) {
  return formatParts(value, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

/** Format a time with the zone: "08.10 WIB". */
export function formatTime(value) {
  const clock = formatClock(value);
  return clock === EMPTY ? EMPTY : `${clock} ${zoneAbbreviation}`;
}

/** Format a date and time with the zone: "13 Maret 2019 08.10 WIB". */
export function formatDateTime(value) {
  const day = formatDate(value);
  return day === EMPTY ? EMPTY : `${day} ${formatTime(value)}`;
}

/** Format a time with the zone, and the date too unless it is today in the zone. */
export function formatMoment(value) {
  if (value === null || value === undefined) {
    return EMPTY;
  }
  return localDate(value) === todayInZone() ? formatTime(value) : formatDateTime(value);
}

/** Format a duration in seconds with its two largest units: 93784 → "1 hari 2 jam". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) {
    return EMPTY;
  }
  const units = [
    ["duration.days", Math.floor(seconds / 86400)],
    ["duration.hours", Math.floor((seconds % 86400) / 3600)],
    ["duration.minutes", Math.floor((seconds % 3600) / 60)],
  ];
  const parts = units.filter(([, count]) => count > 0).slice(0, 2);
  if (parts.length === 0) {
    return t("duration.seconds", { count: formatNumber(Math.floor(seconds), 0) });
  }
  return parts.map(([key, count]) => t(key, { count: formatNumber(count, 0) })).join(" ");
}

/** Format a calendar date given as YYYY-MM-DD, without moving it through a zone: "2026-12-04" → "4 Desember 2026". */
export function formatCalendarDate(isoDate, options = { day: "numeric", month: "long", year: "numeric" }) {
  if (!isoDate) {
    return EMPTY;
  }
  return new Intl.DateTimeFormat(currentLocale(), { ...options, timeZone: "UTC" }).format(new Date(`${isoDate}T00:00:00Z`));
}

/** Format a calendar month given as YYYY-MM: "2026-12" → "Desember 2026". */
export function formatCalendarMonth(isoMonth) {
  return formatCalendarDate(`${isoMonth}-01`, { month: "long", year: "numeric" });
}

/** Return the local date of a moment in the zone, as YYYY-MM-DD. */
export function localDate(value) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(toDate(value));
  const part = (type) => parts.find((item) => item.type === type).value;
  return `${part("year")}-${part("month")}-${part("day")}`;
}

/** Return today's date in the zone, as YYYY-MM-DD. */
export function todayInZone() {
  return localDate(new Date());
}

/** Return the date `days` days after the date `isoDate` (YYYY-MM-DD), as YYYY-MM-DD. */
export function addDays(isoDate, days) {
  const date = new Date(`${isoDate}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

function formatParts(value, options) {
  if (value === null || value === undefined || value === "") {
    return EMPTY;
  }
  return new Intl.DateTimeFormat(currentLocale(), { ...options, timeZone: zone }).format(toDate(value));
}

function toDate(value) {
  return value instanceof Date ? value : new Date(value);
}
