/**
 * Page of one OPD (#/opd/<id>): rooms, energy, attendance recap, devices and exports.
 *
 * The page subscribes to the OPD's live stream and shows each new reading in place: room
 * values, meter power, device and node last-seen times. Each section loads on its own, so
 * one failed request leaves the others readable.
 */

import { getJson } from "../api.js";
import { h } from "../dom.js";
import { formatMoment, formatNumber } from "../format.js";
import { t, tOr } from "../i18n.js";
import { openLiveStream } from "../live.js";
import { routeHref } from "../router.js";
import { errorBox, pageHeader, section } from "./common.js";
import { comfortLimitsOf } from "./comfort.js";
import { attendanceSection } from "./opd_attendance.js";
import { devicesSection } from "./opd_devices.js";
import { energySection } from "./opd_energy.js";
import { roomsSection } from "./opd_rooms.js";
import { currentMonth, exportControls } from "./exports.js";

const STREAMS = ["room", "energy", "attendance", "status"];
const TREND_FIELD = "temperature_c";

export async function renderOpd(container, route, app) {
  const opd = route.params.opd;
  const base = `opds/${encodeURIComponent(opd)}`;
  const detail = await getJson(base);

  const [latestResults, recapResult] = await Promise.all([
    Promise.allSettled(STREAMS.map((stream) => getJson(`${base}/latest`, { stream }))),
    settle(getJson(`${base}/attendance/recap`)),
  ]);
  const latest = Object.fromEntries(STREAMS.map((stream, index) => [stream, latestResults[index]]));

  const lastSeen = h("span", { "data-field": "last-seen" }, detail.last_seen ? formatMoment(detail.last_seen) : t("overview.no_data"));
  const facts = [detail.town, detail.island].filter(Boolean).join(", ");
  const header = pageHeader(
    detail.name,
    h("p", { class: "page-header__meta" },
      h("span", {}, `OPD ${detail.id}`),
      facts ? h("span", {}, facts) : null,
      detail.employees ? h("span", {}, t("opd.employees", { count: formatNumber(detail.employees, 0) })) : null,
      h("span", {}, t("overview.last_data"), " ", lastSeen),
    ),
    h("nav", { class: "page-links", "aria-label": t("opd.links") },
      h("a", { href: routeHref("nodes", opd) }, t("nav.nodes")),
      h("a", { href: routeHref("alerts", null, { opd }) }, t("nav.alerts")),
      h("a", { href: "#section-exports", onclick: (event) => jumpTo(event, "section-exports") }, t("nav.exports")),
    ),
  );

  const handlers = [];
  const parts = [header];

  if (latest.room.status === "fulfilled") {
    const rooms = roomsSection({
      opd,
      detail,
      latest: latest.room.value,
      trendField: TREND_FIELD,
      comfort: comfortLimitsOf(app.meta, opd),
    });
    parts.push(rooms.element);
    handlers.push((reading) => reading.stream === "room" && rooms.applyReading(reading));
  } else {
    parts.push(section("rooms", t("rooms.title"), errorBox(latest.room.reason, "rooms.failed")));
  }

  if (latest.energy.status === "fulfilled") {
    const energy = energySection({ opd, latest: latest.energy.value });
    parts.push(energy.element);
    handlers.push((reading) => reading.stream === "energy" && energy.applyReading(reading));
  } else {
    parts.push(section("energy", t("energy.title"), errorBox(latest.energy.reason, "energy.failed")));
  }

  parts.push(
    recapResult.status === "fulfilled"
      ? attendanceSection(recapResult.value)
      : section("attendance", t("recap.title", { month: "" }), errorBox(recapResult.reason, "recap.failed")),
  );

  const failedLatest = STREAMS.map((stream) => latest[stream]).find((result) => result.status === "rejected");
  if (failedLatest) {
    parts.push(section("devices", t("devices.title"), errorBox(failedLatest.reason, "devices.failed")));
  } else {
    const devices = devicesSection({
      detail,
      latestByStream: Object.fromEntries(STREAMS.map((stream) => [stream, latest[stream].value])),
      offlineAfterS: app.meta.device_offline_s,
    });
    parts.push(devices.element);
    handlers.push((reading) => devices.applyReading(reading));
  }

  parts.push(section("exports", t("exports.title"), exportControls(opd, currentMonth(), "opd-export")));
  const alertNotice = h("div", { class: "live-alerts", "aria-live": "polite" });
  parts.splice(1, 0, alertNotice);
  container.replaceChildren(...parts);

  const close = openLiveStream({
    opd,
    onReading: (reading) => {
      lastSeen.textContent = formatMoment(reading.time);
      for (const handler of handlers) {
        handler(reading);
      }
    },
    onAlert: (alert) => {
      // Closing, acknowledging or re-grading an alert changes the alert list, not this notice.
      if (alert.change !== undefined && alert.change !== "opened") {
        return;
      }
      alertNotice.replaceChildren(
        h("p", { class: `notice notice--${alert.severity}` },
          t("alerts.live_notice", { kind: tOr(`alerts.kind.${alert.kind}`, alert.kind), room: alert.room ?? alert.device ?? alert.node ?? opd }),
          " ",
          h("a", { href: routeHref("alerts", null, { opd }) }, t("alerts.open_list"))),
      );
    },
    onState: app.setLiveState,
  });
  return close;
}

function settle(promise) {
  return promise.then((value) => ({ status: "fulfilled", value }), (reason) => ({ status: "rejected", reason }));
}

function jumpTo(event, id) {
  event.preventDefault();
  const target = document.getElementById(id);
  if (target) {
    target.scrollIntoView();
    target.setAttribute("tabindex", "-1");
    target.focus();
  }
}
