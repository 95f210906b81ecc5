/**
 * Edge nodes of one OPD (#/nodes/<opd>): state, queue, and desired against reported
 * configuration version from GET /api/v1/nodes?opd=, with each node's configuration from
 * GET /api/v1/opds/{opd}/nodes/{node}/config. Admins edit the settings as JSON and save
 * them with PUT on the same path, which returns the new version.
 */

import { getJson, putJson } from "../api.js";
import { isAdmin } from "../auth.js";
import { h } from "../dom.js";
import { EMPTY, formatDuration, formatMoment, formatNumber } from "../format.js";
import { t, tOr } from "../i18n.js";
import { openLiveStream } from "../live.js";
import { routeHref } from "../router.js";
import { errorBox, opdSelect, pageHeader, section, unavailableBox } from "./common.js";

export async function renderNodes(container, route, app) {
  if (!app.meta.features.nodes) {
    container.replaceChildren(pageHeader(t("nodes.title")), unavailableBox("feature.nodes"));
    return () => {};
  }

  const opds = await getJson("opds");
  const opd = route.params.opd ?? opds[0]?.id;
  if (!opd) {
    container.replaceChildren(pageHeader(t("nodes.title")), h("p", { class: "empty" }, t("nodes.no_opds")));
    return () => {};
  }

  const listBox = h("div", { class: "nodes-list" });
  const configBox = h("div", { class: "node-config", id: "node-config", "aria-live": "polite" });
  container.replaceChildren(
    pageHeader(t("nodes.title")),
    opdSelect({ id: "nodes-opd", opds, selected: opd, onChange: (value) => { window.location.hash = routeHref("nodes", value); } }),
    section("nodes", t("nodes.list_title", { opd: opds.find((item) => item.id === opd)?.name ?? opd }), listBox),
    configBox,
  );

  const cells = new Map();
  async function loadList() {
    try {
      const answer = await getJson("nodes", { opd });
      listBox.replaceChildren(nodesTable(answer.nodes, cells, (node) => openConfig(opd, node, configBox, loadList)));
    } catch (error) {
      listBox.replaceChildren(errorBox(error, "nodes.failed"));
    }
  }
  await loadList();

  return openLiveStream({
    opd,
    onReading: (reading) => {
      if (reading.stream !== "status") {
        return;
      }
      const row = cells.get(reading.node);
      if (row) {
        row.state.replaceChildren(stateBadge(reading.state ?? "unknown"));
        row.lastSeen.textContent = formatMoment(reading.time);
      }
    },
    onState: app.setLiveState,
  });
}

function nodesTable(nodes, cells, onOpen) {
  const columns = ["node", "state", "last_seen", "sw_version", "uptime", "queue_depth", "dropped_total", "versions", "config_state"];
  const body = h("tbody");
  cells.clear();
  for (const node of nodes) {
    const state = h("span", {}, stateBadge(node.state));
    const lastSeen = h("span", { "data-field": "last-seen" }, formatMoment(node.last_seen));
    cells.set(node.node, { state, lastSeen });
    const button = h("button", { type: "button", class: "button button--secondary", "aria-controls": "node-config", "data-action": "open-config" }, t("nodes.open_config"));
    button.addEventListener("click", () => onOpen(node.node));
    body.append(
      h(
        "tr",
        { dataset: { node: node.node, configState: node.config_state } },
        h("th", { scope: "row" }, node.name ? [node.node, h("br"), h("small", {}, node.name)] : node.node),
        h("td", {}, state),
        h("td", {}, lastSeen),
        h("td", {}, node.sw_version ?? EMPTY),
        h("td", {}, formatDuration(node.uptime_s)),
        h("td", { class: "numeric" }, formatNumber(node.queue_depth, 0)),
        h("td", { class: "numeric" }, formatNumber(node.dropped_total, 0)),
        h("td", { "data-field": "versions" }, t("nodes.versions", { desired: node.desired_version ?? EMPTY, reported: node.reported_version ?? EMPTY })),
        h("td", {}, configState(node)),
        h("td", {}, button),
      ),
    );
  }
  if (nodes.length === 0) {
    body.append(h("tr", {}, h("td", { colspan: columns.length + 1, class: "empty" }, t("nodes.none"))));
  }
  const table = h(
    "table",
    {},
    h("caption", {}, t("nodes.caption")),
    h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col" }, t(`nodes.column.${column}`))), h("th", { scope: "col" }, t("nodes.column.action")))),
    body,
  );
  return h("div", { class: "table-wrap", role: "region", "aria-label": t("nodes.caption"), tabindex: "0" }, table);
}

const STATE_BADGES = { online: "ok", offline: "critical" };

function stateBadge(state) {
  const kind = STATE_BADGES[state] ?? "muted";
  return h("span", { class: `badge badge--${kind}`, "data-field": "state" }, tOr(`state.${state}`, state));
}

function configState(node) {
  const kind = { in_sync: "ok", pending: "warning", failed: "critical" }[node.config_state] ?? "muted";
  const badge = h("span", { class: `badge badge--${kind}`, "data-field": "config-state" }, tOr(`nodes.config_state.${node.config_state}`, node.config_state));
  return node.config_error ? [badge, h("p", { class: "config-error" }, node.config_error)] : badge;
}

async function openConfig(opd, node, box, reloadList) {
  const path = `opds/${encodeURIComponent(opd)}/nodes/${encodeURIComponent(node)}/config`;
  box.replaceChildren(h("p", { class: "loading" }, t("common.loading")));
  let config;
  try {
    config = await getJson(path);
  } catch (error) {
    box.replaceChildren(section("config", t("nodes.config_title", { node }), errorBox(error, "nodes.config_failed")));
    return;
  }

  const facts = config.version === null
    ? h("p", { class: "hint", "data-field": "config-version" }, t("nodes.config_none"))
    : h("p", { class: "hint", "data-field": "config-version" }, t("nodes.config_version", { version: config.version, time: formatMoment(config.issued_at), user: config.issued_by ?? EMPTY }));
  const reported = h("div", {}, h("h3", {}, t("nodes.reported_title")), reportedText(config.reported));
  const settingsText = JSON.stringify(config.settings ?? {}, null, 2);

  let editor;
  if (isAdmin()) {
    const status = h("div", { class: "action-status", "aria-live": "polite" });
    const textarea = h("textarea", { id: "config-settings", rows: 16, spellcheck: "false", "aria-describedby": "config-settings-hint" });
    textarea.value = settingsText;
    const form = h(
      "form",
      { class: "config-form" },
      h("label", { for: "config-settings", class: "field__label" }, t("nodes.settings_label")),
      h("p", { class: "hint", id: "config-settings-hint" }, t("nodes.settings_hint")),
      textarea,
      h("p", { class: "button-row" }, h("button", { type: "submit", class: "button" }, t("nodes.save"))),
      status,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let settings;
      try {
        settings = JSON.parse(textarea.value);
      } catch (error) {
        status.replaceChildren(h("p", { class: "error-box", role: "alert" }, t("nodes.invalid_json", { problem: error.message })));
        textarea.focus();
        return;
      }
      if (settings === null || typeof settings !== "object" || Array.isArray(settings)) {
        status.replaceChildren(h("p", { class: "error-box", role: "alert" }, t("nodes.not_an_object")));
        textarea.focus();
        return;
      }
      try {
        const saved = await putJson(path, { settings });
        status.replaceChildren(h("p", { role: "status" }, t("nodes.saved", { version: saved.version })));
        reloadList();
      } catch (error) {
        status.replaceChildren(errorBox(error, "nodes.save_failed"));
      }
    });
    editor = form;
  } else {
    editor = h("div", {}, h("h3", {}, t("nodes.settings_label")), h("pre", { class: "json", "data-field": "settings" }, settingsText), h("p", { class: "hint" }, t("nodes.admin_only")));
  }

  box.replaceChildren(section("config", t("nodes.config_title", { node }), facts, editor, reported));
  box.querySelector("h2")?.setAttribute("tabindex", "-1");
  box.querySelector("h2")?.focus();
}

function reportedText(report) {
  if (!report) {
    return h("p", { class: "empty", "data-field": "reported" }, t("nodes.reported_none"));
  }
  const key = report.result === "applied" ? "nodes.reported_applied" : "nodes.reported_rejected";
  const text = t(key, { version: report.version, time: formatMoment(report.reported_at) });
  return h("div", { "data-field": "reported" }, h("p", {}, text), report.error ? h("pre", { class: "json" }, report.error) : null);
}
