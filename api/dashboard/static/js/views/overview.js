/**
 * Overview of every OPD (#/): devices online and offline, attendance rate today, kWh today
 * against the usual for this weekday, open alerts and the worst room, from GET /api/v1/overview.
 *
 * Live readings update each OPD's "last data" time at once. The aggregates are read again
 * at most every REFRESH_AFTER_READING_MS while readings arrive, and soon after an alert event.
 */

import { getJson } from "../api.js";
import { h } from "../dom.js";
import {
  EMPTY,
  formatChange,
  formatMoment,
  formatNumber,
  formatPercent,
  formatQuantity,
  formatTime,
  formatWeekday,
} from "../format.js";
import { t } from "../i18n.js";
import { openLiveStream } from "../live.js";
import { routeHref } from "../router.js";
import { errorBox, pageHeader } from "./common.js";
import { breachText } from "./comfort.js";

const REFRESH_AFTER_READING_MS = 30_000;
const REFRESH_AFTER_ALERT_MS = 2_000;

export async function renderOverview(container, route, app) {
  const [overview, opds] = await Promise.all([getJson("overview"), getJson("opds")]);
  const lastSeen = new Map(opds.map((opd) => [opd.id, opd.last_seen]));

  const updated = h("p", { class: "page-header__meta", "data-field": "updated" });
  const summary = h("div", { class: "summary", "aria-live": "off" });
  const grid = h("div", { class: "opd-grid" });
  const refreshError = h("div", { class: "refresh-error" });
  container.replaceChildren(
    pageHeader(t("overview.title", { regency: app.meta.regency.name }), updated),
    summary,
    refreshError,
    h("h2", { class: "visually-hidden" }, t("overview.opds_heading")),
    grid,
  );

  const cards = new Map();
  for (const entry of overview.opds) {
    const card = buildCard(entry);
    cards.set(entry.opd, card);
    grid.append(card.element);
  }
  fill(overview);

  function fill(answer) {
    updated.textContent = t("overview.updated", { time: formatTime(answer.time) });
    fillSummary(summary, answer);
    for (const entry of answer.opds) {
      let card = cards.get(entry.opd);
      if (!card) {
        card = buildCard(entry);
        cards.set(entry.opd, card);
        grid.append(card.element);
      }
      fillCard(card, entry, lastSeen.get(entry.opd) ?? null);
    }
  }

  let refreshTimer = null;
  function scheduleRefresh(delayMs) {
    if (refreshTimer !== null) {
      return;
    }
    refreshTimer = setTimeout(async () => {
      refreshTimer = null;
      try {
        fill(await getJson("overview"));
        refreshError.replaceChildren();
      } catch (error) {
        refreshError.replaceChildren(errorBox(error, "overview.refresh_failed"));
      }
    }, delayMs);
  }

  const close = openLiveStream({
    onReading: (reading) => {
      lastSeen.set(reading.opd, reading.time);
      const card = cards.get(reading.opd);
      if (card) {
        card.fields.lastSeen.textContent = formatMoment(reading.time);
      }
      scheduleRefresh(REFRESH_AFTER_READING_MS);
    },
    onAlert: () => scheduleRefresh(REFRESH_AFTER_ALERT_MS),
    onDropped: () => scheduleRefresh(REFRESH_AFTER_ALERT_MS),
    onState: app.setLiveState,
  });

  return () => {
    close();
    clearTimeout(refreshTimer);
  };
}

function buildCard(entry) {
  const titleId = `opd-${entry.opd}-title`;
  const field = (name) => h("span", { "data-field": name });
  const fields = {
    status: h("p", { class: "badge", "data-field": "status" }),
    lastSeen: field("last-seen"),
    online: field("devices-online"),
    offline: field("devices-offline"),
    offlineNodes: field("offline-nodes"),
    attendanceRate: field("attendance-rate"),
    attendanceCount: field("attendance-count"),
    energyToday: field("energy-today"),
    energyUsual: field("energy-usual"),
    openAlerts: h("a", { "data-field": "open-alerts", href: routeHref("alerts", null, { opd: entry.opd }) }),
    worstRoom: field("worst-room"),
  };
  const offlineNodesRow = h("div", { class: "metric" }, h("dt", {}, t("overview.offline_nodes")), h("dd", {}, fields.offlineNodes));

  const element = h(
    "article",
    { class: "opd-card", "aria-labelledby": titleId, dataset: { opd: entry.opd } },
    h("header", { class: "opd-card__header" },
      h("h3", { id: titleId }, h("a", { href: routeHref("opd", entry.opd) }, entry.name)),
      fields.status,
    ),
    h("p", { class: "opd-card__last" }, t("overview.last_data"), " ", fields.lastSeen),
    h(
      "dl",
      { class: "metrics" },
      h("div", { class: "metric" }, h("dt", {}, t("overview.devices")),
        h("dd", {}, fields.online, " ", t("overview.devices_online_label"), " · ", fields.offline, " ", t("overview.devices_offline_label"))),
      offlineNodesRow,
      h("div", { class: "metric" }, h("dt", {}, t("overview.attendance_today")),
        h("dd", {}, h("strong", {}, fields.attendanceRate), " ", h("small", {}, fields.attendanceCount))),
      h("div", { class: "metric" }, h("dt", {}, t("overview.energy_today")),
        h("dd", {}, h("strong", {}, fields.energyToday), " ", h("small", {}, fields.energyUsual))),
      h("div", { class: "metric" }, h("dt", {}, t("overview.open_alerts")), h("dd", {}, fields.openAlerts)),
      h("div", { class: "metric" }, h("dt", {}, t("overview.worst_room")), h("dd", {}, fields.worstRoom)),
    ),
  );
  return { element, fields, offlineNodesRow };
}

function fillCard(card, entry, lastSeen) {
  const { fields } = card;
  fields.lastSeen.textContent = lastSeen ? formatMoment(lastSeen) : t("overview.no_data");
  fields.online.textContent = formatNumber(entry.devices.online, 0);
  fields.offline.textContent = formatNumber(entry.devices.offline, 0);
  fields.offlineNodes.textContent = entry.devices.offline_nodes.join(", ");
  card.offlineNodesRow.hidden = entry.devices.offline_nodes.length === 0;

  const attendance = entry.attendance;
  fields.attendanceRate.textContent = formatPercent(attendance.rate);
  fields.attendanceCount.textContent = attendance.employees
    ? t("overview.attendance_count", { punched: formatNumber(attendance.punched, 0), employees: formatNumber(attendance.employees, 0) })
    : t("overview.attendance_punched", { punched: formatNumber(attendance.punched, 0) });

  const energy = entry.energy;
  fields.energyToday.textContent = formatQuantity(energy.today_kwh, "kWh", 2);
  fields.energyUsual.textContent = usualEnergyText(energy);

  fields.openAlerts.textContent = entry.open_alerts === null || entry.open_alerts === undefined ? EMPTY : formatNumber(entry.open_alerts, 0);
  fields.openAlerts.title = entry.open_alerts === null || entry.open_alerts === undefined ? t("overview.alerts_not_counted") : "";

  fields.worstRoom.textContent = entry.worst_room
    ? `${entry.worst_room.name ?? entry.worst_room.room}: ${entry.worst_room.breaches.map(breachText).join("; ")}`
    : t("overview.all_rooms_comfortable");

  const needsAttention = entry.devices.offline > 0 || entry.worst_room !== null || (entry.open_alerts ?? 0) > 0;
  fields.status.textContent = needsAttention ? t("overview.status_attention") : t("overview.status_ok");
  fields.status.className = needsAttention ? "badge badge--warning" : "badge badge--ok";
}

function usualEnergyText(energy) {
  if (energy.usual_kwh === null) {
    return t("overview.usual_unknown");
  }
  const weekday = formatWeekday(new Date());
  const usual = formatQuantity(energy.usual_kwh, "kWh", 2);
  if (energy.today_kwh === null || energy.usual_kwh === 0) {
    return t("overview.usual", { weekday, usual });
  }
  const change = (energy.today_kwh - energy.usual_kwh) / energy.usual_kwh;
  return t("overview.usual_with_change", { weekday, usual, change: formatChange(change) });
}

function fillSummary(summary, answer) {
  const totals = answer.opds.reduce(
    (sum, entry) => ({
      online: sum.online + entry.devices.online,
      known: sum.known + entry.devices.known,
      kwh: sum.kwh + (entry.energy.today_kwh ?? 0),
      attention: sum.attention + (entry.devices.offline > 0 || entry.worst_room !== null ? 1 : 0),
    }),
    { online: 0, known: 0, kwh: 0, attention: 0 },
  );
  const item = (field, label, value) => h("div", { class: "summary__item" }, h("span", { class: "summary__label" }, label), h("strong", { "data-field": field }, value));
  summary.replaceChildren(
    item("summary-opds", t("overview.summary_opds"), formatNumber(answer.opds.length, 0)),
    item("summary-devices", t("overview.summary_devices"), t("overview.summary_devices_value", { online: formatNumber(totals.online, 0), known: formatNumber(totals.known, 0) })),
    item("summary-energy", t("overview.summary_energy"), formatQuantity(totals.kwh, "kWh", 2)),
    item("summary-attention", t("overview.summary_attention"), formatNumber(totals.attention, 0)),
  );
}
