/**
 * Alerts (#/alerts?state=open|all&opd=<id>): the list of GET /api/v1/alerts with an
 * "acknowledge" button (POST /api/v1/alerts/{id}/acknowledge), kept current by the live
 * stream's "alert" events.
 */

import { getJson, postJson } from "../api.js";
import { mayAcknowledge } from "../auth.js";
import { h } from "../dom.js";
import { EMPTY, formatMoment, formatNumber } from "../format.js";
import { t, tOr } from "../i18n.js";
import { openLiveStream } from "../live.js";
import { routeHref } from "../router.js";
import { errorBox, opdSelect, pageHeader, unavailableBox } from "./common.js";

const COLUMNS = ["started", "opd", "place", "kind", "severity", "value", "state", "acknowledged"];

export async function renderAlerts(container, route, app) {
  if (!app.meta.features.alerts) {
    container.replaceChildren(pageHeader(t("alerts.title")), unavailableBox("feature.alerts"));
    return () => {};
  }

  const state = route.query.state === "all" ? "all" : "open";
  const opd = route.query.opd ?? "";
  const [opds, answer] = await Promise.all([getJson("opds"), getJson("alerts", { state, opd })]);
  const opdNames = new Map(opds.map((item) => [item.id, item.name]));

  const status = h("div", { class: "action-status", "aria-live": "polite" });
  const body = h("tbody");
  const rows = new Map();
  const emptyRow = h("tr", {}, h("td", { colspan: COLUMNS.length + 1, class: "empty" }, t(state === "open" ? "alerts.none_open" : "alerts.none")));

  function upsert(alert, highlight) {
    if (opd && alert.opd !== opd) {
      return;
    }
    const existing = rows.get(alert.id);
    if (state === "open" && alert.state !== "open") {
      existing?.remove();
      rows.delete(alert.id);
    } else {
      const row = alertRow(alert, opdNames, acknowledge);
      if (highlight) {
        row.classList.add("flash");
      }
      if (existing) {
        existing.replaceWith(row);
      } else {
        body.prepend(row);
      }
      rows.set(alert.id, row);
    }
    emptyRow.hidden = rows.size > 0;
  }

  async function acknowledge(alert, button) {
    button.disabled = true;
    try {
      const updated = await postJson(`alerts/${alert.id}/acknowledge`);
      upsert(updated, true);
      status.replaceChildren(h("p", { role: "status" }, t("alerts.acknowledged_done", { id: alert.id })));
    } catch (error) {
      button.disabled = false;
      status.replaceChildren(errorBox(error, "alerts.acknowledge_failed"));
    }
  }

  body.append(emptyRow);
  for (const alert of [...answer.alerts].reverse()) {
    upsert(alert, false);
  }

  const stateSelect = h(
    "select",
    { id: "alerts-state", onchange: (event) => navigate(event.target.value, opd) },
    h("option", { value: "open", selected: state === "open" }, t("alerts.filter_open")),
    h("option", { value: "all", selected: state === "all" }, t("alerts.filter_all")),
  );
  const table = h(
    "table",
    { class: "alerts-table" },
    h("caption", {}, t("alerts.caption")),
    h("thead", {}, h("tr", {}, COLUMNS.map((column) => h("th", { scope: "col" }, t(`alerts.column.${column}`))), h("th", { scope: "col" }, t("alerts.column.action")))),
    body,
  );

  container.replaceChildren(
    pageHeader(t("alerts.title")),
    h("div", { class: "filters" },
      h("label", { class: "field", for: "alerts-state" }, h("span", { class: "field__label" }, t("alerts.filter_state")), stateSelect),
      opdSelect({ id: "alerts-opd", opds, selected: opd, includeAll: true, onChange: (value) => navigate(state, value) }),
    ),
    status,
    h("div", { class: "table-wrap", role: "region", "aria-label": t("alerts.caption"), tabindex: "0" }, table),
  );

  return openLiveStream({ opd: opd || null, onAlert: (alert) => upsert(alert, true), onState: app.setLiveState });
}

function navigate(state, opd) {
  window.location.hash = routeHref("alerts", null, { state: state === "open" ? null : state, opd: opd || null });
}

function alertRow(alert, opdNames, acknowledge) {
  const place = [alert.room, alert.device, alert.node].filter(Boolean).join(" · ") || EMPTY;
  let value = EMPTY;
  if (alert.value !== null && alert.threshold === null) {
    value = formatNumber(alert.value, 2);
  } else if (alert.value !== null) {
    value = t("alerts.value_threshold", { value: formatNumber(alert.value, 2), threshold: formatNumber(alert.threshold, 2) });
  }
  const acknowledged = alert.acknowledged_by
    ? t("alerts.acknowledged_by", { user: alert.acknowledged_by, time: formatMoment(alert.acknowledged_at) })
    : EMPTY;
  const action = alert.acknowledged_by || alert.state !== "open" || !mayAcknowledge()
    ? EMPTY
    : h("button", { type: "button", class: "button", "data-action": "acknowledge", "aria-label": t("alerts.acknowledge_label", { id: alert.id }) }, t("alerts.acknowledge"));
  if (action instanceof HTMLElement) {
    action.addEventListener("click", () => acknowledge(alert, action));
  }
  const stateText = alert.state === "open" ? t("alerts.state_open") : t("alerts.state_closed", { time: formatMoment(alert.ended_at) });

  return h(
    "tr",
    { dataset: { alertId: String(alert.id), severity: alert.severity, state: alert.state } },
    h("td", {}, formatMoment(alert.started_at)),
    h("td", {}, h("a", { href: routeHref("opd", alert.opd) }, opdNames.get(alert.opd) ?? alert.opd)),
    h("td", {}, place),
    h("td", {}, tOr(`alerts.kind.${alert.kind}`, alert.kind)),
    h("td", {}, h("span", { class: `badge badge--${alert.severity === "critical" ? "critical" : "warning"}` }, tOr(`alerts.severity.${alert.severity}`, alert.severity))),
    h("td", { class: "numeric" }, value),
    h("td", {}, stateText),
    h("td", {}, acknowledged),
    h("td", {}, action),
  );
}
