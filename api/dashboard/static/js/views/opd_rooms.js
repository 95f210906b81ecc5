/**
 * Rooms of one OPD: the newest comfort values per room, live updates, and a 24-hour trend
 * of one field (GET /opds/{opd}/latest?stream=room and /series?window=1h).
 */

import { getJson } from "../api.js";
import { h } from "../dom.js";
import { EMPTY, formatClock, formatMoment, formatNumber, formatTime, zoneOffsetMs } from "../format.js";
import { t } from "../i18n.js";
import { lineChart, seriesStyle, sparkline } from "../charts.js";
import { cell, dataTable, errorBox, flash, section } from "./common.js";
import { COMFORT_FIELDS, isUncomfortable, limitsText } from "./comfort.js";

const TREND_WINDOW = "1h";
const TREND_GAP_MS = 2 * 3_600_000;

/**
 * Build the rooms section and return {element, applyReading}; applyReading(reading) shows a
 * live room reading in its room's row.
 */
export function roomsSection({ opd, detail, latest, trendField, comfort }) {
  const rooms = roomList(detail, latest.readings);
  const rows = new Map();
  const body = [];
  for (const room of rooms) {
    const cells = {};
    const flags = {};
    for (const { field } of COMFORT_FIELDS) {
      cells[field] = h("span", { "data-field": field }, EMPTY);
      flags[field] = h("span", { class: "flag" });
    }
    cells.time = h("span", { "data-field": "time" }, t("rooms.no_reading"));
    cells.trend = h("span", { class: "trend-cell", "data-field": "trend" });
    rows.set(room.id, { cells, flags });
    body.push({
      attributes: { dataset: { room: room.id } },
      cells: [room.name, ...COMFORT_FIELDS.map(({ field }) => cell([cells[field], flags[field]], { "data-column": field })), cells.time, cells.trend],
    });
  }

  const table = dataTable({
    caption: t("rooms.caption"),
    columns: [
      { label: t("rooms.room"), header: true },
      ...COMFORT_FIELDS.map(({ field, unit }) => ({ label: `${t(`field.${field}`)} (${unit})`, numeric: true })),
      { label: t("rooms.time") },
      { label: t("rooms.trend") },
    ],
    rows: body,
    emptyText: t("rooms.none"),
    attributes: { class: "rooms-table" },
  });
  // The values go in after the table exists, because a value outside the limits marks its <td>.
  for (const room of rooms) {
    const reading = newestReading(latest.readings, room.id);
    if (reading) {
      showValues(rows.get(room.id), reading.values, reading.time, comfort, false);
    }
  }

  const trendBox = h("div", { class: "trend" }, h("p", { class: "loading" }, t("common.loading")));
  const fieldSelect = h(
    "select",
    { id: "trend-field", onchange: (event) => loadTrend({ opd, detail, field: event.target.value, trendBox, rows, rooms }) },
    COMFORT_FIELDS.map(({ field }) => h("option", { value: field, selected: field === trendField }, t(`field.${field}`))),
  );

  const element = section(
    "rooms",
    t("rooms.title"),
    h("p", { class: "hint" }, t("rooms.limits", { limits: limitsText(comfort) })),
    table,
    h("h3", {}, t("rooms.trend_title")),
    h("label", { class: "field", for: "trend-field" }, h("span", { class: "field__label" }, t("rooms.trend_field")), fieldSelect),
    trendBox,
  );

  loadTrend({ opd, detail, field: trendField, trendBox, rows, rooms });

  return {
    element,
    applyReading(reading) {
      const row = rows.get(reading.room);
      if (row) {
        showValues(row, reading, reading.time, comfort, true);
      }
    },
  };
}

function roomList(detail, readings) {
  const rooms = detail.rooms.map((room) => ({ id: room.id, name: room.name }));
  const known = new Set(rooms.map((room) => room.id));
  for (const reading of readings) {
    const roomId = reading.tags.room;
    if (roomId && !known.has(roomId)) {
      known.add(roomId);
      rooms.push({ id: roomId, name: roomId });
    }
  }
  return rooms;
}

function newestReading(readings, roomId) {
  return readings.filter((reading) => reading.tags.room === roomId).sort((a, b) => b.ts - a.ts)[0] ?? null;
}

function showValues(row, values, time, comfort, live) {
  for (const { field, decimals } of COMFORT_FIELDS) {
    if (values[field] === undefined || values[field] === null) {
      continue;
    }
    const target = row.cells[field];
    const uncomfortable = isUncomfortable(field, values[field], comfort);
    target.textContent = formatNumber(values[field], decimals);
    row.flags[field].replaceChildren();
    if (uncomfortable) {
      row.flags[field].append(
        h("span", { "aria-hidden": "true", title: t("rooms.outside_limits") }, " !"),
        h("span", { class: "visually-hidden" }, ` (${t("rooms.outside_limits")})`),
      );
    }
    target.parentElement?.classList.toggle("uncomfortable", uncomfortable);
    if (live) {
      flash(target);
    }
  }
  row.cells.time.textContent = formatMoment(time);
  if (live) {
    flash(row.cells.time);
  }
}

async function loadTrend({ opd, detail, field, trendBox, rows, rooms }) {
  trendBox.replaceChildren(h("p", { class: "loading" }, t("common.loading")));
  let answer;
  try {
    answer = await getJson(`opds/${encodeURIComponent(opd)}/series`, { field, stream: "room", window: TREND_WINDOW });
  } catch (error) {
    trendBox.replaceChildren(errorBox(error, "rooms.trend_failed"));
    return;
  }

  const roomOfDevice = new Map();
  for (const node of detail.nodes) {
    for (const device of node.devices) {
      if (device.room) {
        roomOfDevice.set(device.id, device.room);
      }
    }
  }
  const roomName = new Map(rooms.map((room) => [room.id, room.name]));
  const unit = COMFORT_FIELDS.find((item) => item.field === field);
  const series = answer.series.map((deviceSeries) => {
    const roomId = roomOfDevice.get(deviceSeries.device) ?? deviceSeries.device;
    return {
      roomId,
      name: roomName.get(roomId) ?? roomId,
      points: deviceSeries.points.map((point) => ({
        x: point.ts,
        y: point.value,
        tooltip: `${roomName.get(roomId) ?? roomId}, ${formatTime(point.time)}: ${formatNumber(point.value, unit.decimals)} ${unit.unit}`,
      })),
    };
  });

  for (const row of rows.values()) {
    row.cells.trend.replaceChildren();
  }
  for (const line of series) {
    const row = rows.get(line.roomId);
    if (row) {
      row.cells.trend.replaceChildren(sparkline(line.points.map((point) => point.y)));
    }
  }

  if (series.length === 0) {
    trendBox.replaceChildren(h("p", { class: "empty" }, t("rooms.trend_none")));
    return;
  }
  const start = Date.parse(answer.start);
  const end = Date.parse(answer.end);
  const chart = lineChart({
    title: t("rooms.trend_chart_title", { field: t(`field.${field}`) }),
    description: t("rooms.trend_chart_desc", { from: formatMoment(answer.start), to: formatMoment(answer.end) }),
    series,
    xStart: start,
    xEnd: end,
    gapMs: TREND_GAP_MS,
    zoneOffsetMs: zoneOffsetMs(end),
    formatTick: (value) => formatNumber(value, unit.decimals),
    formatX: (value) => formatClock(value),
  });
  const legend = h(
    "ul",
    { class: "legend" },
    series.map((line, index) => {
      const style = seriesStyle(index);
      return h("li", {}, legendSwatch(style), line.name);
    }),
  );
  const tableRows = series.flatMap((line) => line.points.map((point) => [line.name, formatMoment(point.x), formatNumber(point.y, unit.decimals)]));
  trendBox.replaceChildren(
    h("figure", { class: "chart-figure" }, chart, h("figcaption", {}, legend)),
    h("details", {}, h("summary", {}, t("common.show_table")),
      dataTable({
        caption: t("rooms.trend_chart_title", { field: t(`field.${field}`) }),
        columns: [{ label: t("rooms.room"), header: true }, { label: t("common.time") }, { label: `${t(`field.${field}`)} (${unit.unit})`, numeric: true }],
        rows: tableRows,
      })),
  );
}

function legendSwatch(style) {
  const swatch = h("span", { class: "legend__swatch", "aria-hidden": "true" });
  swatch.style.borderTopColor = style.color;
  swatch.style.borderTopStyle = style.dash ? "dashed" : "solid";
  return swatch;
}
