/**
 * Energy of one OPD: kWh and cost in Rupiah per hour of one day and per day of the last
 * DAYS_SHOWN days, from GET /opds/{opd}/energy/report, and each meter's newest reading.
 */

import { getJson } from "../api.js";
import { barChart } from "../charts.js";
import { h } from "../dom.js";
import { addDays, formatCalendarDate, formatClock, formatDate, formatMoment, formatNumber, formatQuantity, formatRupiah, formatShortDate, todayInZone, zoneLabel } from "../format.js";
import { t } from "../i18n.js";
import { cell, dataTable, errorBox, flash, section } from "./common.js";

/** Days in the daily chart, today included. */
export const DAYS_SHOWN = 14;

/** Return the query of the hourly report of `day` (YYYY-MM-DD): up to now for today, else the whole day. */
export function hourlyReportParams(day) {
  return day === todayInZone() ? { window: "1h", start: day } : { window: "1h", start: day, end: addDays(day, 1) };
}

/** Return the query of the daily report: the last DAYS_SHOWN local days up to now. */
export function dailyReportParams() {
  return { window: "1d", start: addDays(todayInZone(), -(DAYS_SHOWN - 1)) };
}

/** Build the energy section and return {element, applyReading} for live meter readings. */
export function energySection({ opd, latest }) {
  const path = `opds/${encodeURIComponent(opd)}/energy/report`;
  const today = todayInZone();
  const hourlyBox = h("div", { class: "energy-block", "data-block": "hourly" }, h("p", { class: "loading" }, t("common.loading")));
  const dailyBox = h("div", { class: "energy-block", "data-block": "daily" }, h("p", { class: "loading" }, t("common.loading")));
  const dayInput = h("input", { type: "date", id: "energy-day", value: today, max: today });
  dayInput.addEventListener("change", () => {
    if (dayInput.value) {
      loadHourly(path, dayInput.value, hourlyBox);
    }
  });

  const meters = metersTable(latest.readings);
  const element = section(
    "energy",
    t("energy.title"),
    h("h3", {}, t("energy.meters_title")),
    meters.element,
    h("h3", {}, t("energy.hourly_title")),
    h("label", { class: "field", for: "energy-day" }, h("span", { class: "field__label" }, t("energy.day")), dayInput),
    hourlyBox,
    h("h3", {}, t("energy.daily_title", { days: DAYS_SHOWN })),
    dailyBox,
  );

  loadHourly(path, today, hourlyBox);
  loadDaily(path, dailyBox);
  return { element, applyReading: meters.applyReading };
}

async function loadHourly(path, day, box) {
  box.replaceChildren(h("p", { class: "loading" }, t("common.loading")));
  try {
    const report = await getJson(path, hourlyReportParams(day));
    box.replaceChildren(reportView(report, {
      prefix: "hourly",
      heading: t("energy.hourly_total", { day: formatCalendarDate(day) }),
      label: (bucket) => formatClock(bucket.time),
      period: (bucket) => `${formatClock(bucket.time)}–${formatClock(Date.parse(bucket.time) + 3_600_000)} ${zoneLabel()}`,
      chartTitle: t("energy.hourly_chart_title", { day: formatCalendarDate(day) }),
    }));
  } catch (error) {
    box.replaceChildren(errorBox(error, "energy.failed"));
  }
}

async function loadDaily(path, box) {
  try {
    const report = await getJson(path, dailyReportParams());
    box.replaceChildren(reportView(report, {
      prefix: "daily",
      heading: t("energy.daily_total", { from: formatDate(report.start), to: formatDate(report.end) }),
      label: (bucket) => formatShortDate(bucket.time),
      period: (bucket) => formatDate(bucket.time),
      chartTitle: t("energy.daily_chart_title", { days: DAYS_SHOWN }),
    }));
  } catch (error) {
    box.replaceChildren(errorBox(error, "energy.failed"));
  }
}

function reportView(report, { prefix, heading, label, period, chartTitle }) {
  const totals = h(
    "dl",
    { class: "totals" },
    total(`${prefix}-kwh`, t("energy.total_kwh"), formatQuantity(report.total_kwh, "kWh", 2)),
    total(`${prefix}-cost`, t("energy.total_cost"), formatRupiah(report.total_cost_idr)),
    total(`${prefix}-off-hours`, t("energy.off_hours"), formatQuantity(report.total_off_hours_kwh, "kWh", 2)),
  );
  const tariffs = report.tariffs.map((tariff) =>
    t("energy.tariff", { tariff: tariff.tariff_class, price: formatRupiah(tariff.idr_per_kwh, 2) }),
  );

  if (report.totals.length === 0 || report.meters.length === 0) {
    return h("div", {}, h("p", { class: "energy-heading" }, heading), totals, h("p", { class: "empty" }, t("energy.none")));
  }

  const bars = report.totals.map((bucket) => ({
    label: label(bucket),
    value: bucket.kwh,
    tooltip: t("energy.bar_tooltip", { period: period(bucket), kwh: formatQuantity(bucket.kwh, "kWh", 2), cost: formatRupiah(bucket.cost_idr) }),
  }));
  const chart = barChart({
    title: chartTitle,
    description: t("energy.chart_desc", { kwh: formatQuantity(report.total_kwh, "kWh", 2), cost: formatRupiah(report.total_cost_idr) }),
    bars,
    formatTick: (value) => formatNumber(value, 2),
  });
  const table = dataTable({
    caption: chartTitle,
    columns: [
      { label: t("energy.period"), header: true },
      { label: "kWh", numeric: true },
      { label: t("energy.cost"), numeric: true },
      { label: t("energy.off_hours"), numeric: true },
    ],
    rows: report.totals.map((bucket) => [period(bucket), formatNumber(bucket.kwh, 2), formatRupiah(bucket.cost_idr), formatNumber(bucket.off_hours_kwh, 2)]),
  });
  return h(
    "div",
    {},
    h("p", { class: "energy-heading" }, heading),
    totals,
    tariffs.length ? h("p", { class: "hint" }, tariffs.join(" · ")) : null,
    h("figure", { class: "chart-figure" }, chart, h("figcaption", {}, t("energy.chart_caption"))),
    h("details", {}, h("summary", {}, t("common.show_table")), table),
  );
}

function total(field, label, value) {
  return h("div", { class: "totals__item" }, h("dt", {}, label), h("dd", { "data-field": field }, value));
}

function metersTable(readings) {
  const rows = new Map();
  const body = readings.map((reading) => {
    const cells = {
      power: h("span", { "data-field": "power_w" }, formatQuantity(kilowatts(reading.values.power_w), "kW", 2)),
      register: h("span", { "data-field": "energy_kwh_total" }, formatNumber(reading.values.energy_kwh_total, 2)),
      time: h("span", { "data-field": "time" }, formatMoment(reading.time)),
    };
    rows.set(meterKey(reading.node, reading.device), cells);
    return {
      attributes: { dataset: { device: reading.device, node: reading.node } },
      cells: [reading.device, reading.tags.circuit ?? "", cell(cells.power, {}), cell(cells.register, {}), cells.time],
    };
  });
  const element = dataTable({
    caption: t("energy.meters_caption"),
    columns: [
      { label: t("devices.device"), header: true },
      { label: t("energy.circuit") },
      { label: t("energy.power"), numeric: true },
      { label: t("energy.register"), numeric: true },
      { label: t("common.time") },
    ],
    rows: body,
    emptyText: t("energy.no_meters"),
  });
  return {
    element,
    applyReading(reading) {
      const cells = rows.get(meterKey(reading.node, reading.device));
      if (!cells) {
        return;
      }
      if (reading.power_w !== undefined) {
        cells.power.textContent = formatQuantity(kilowatts(reading.power_w), "kW", 2);
        flash(cells.power);
      }
      if (reading.energy_kwh_total !== undefined) {
        cells.register.textContent = formatNumber(reading.energy_kwh_total, 2);
        flash(cells.register);
      }
      cells.time.textContent = formatMoment(reading.time);
    },
  };
}

function kilowatts(watts) {
  return watts === undefined || watts === null ? null : watts / 1000;
}

function meterKey(node, device) {
  return `${node}/${device}`;
}
