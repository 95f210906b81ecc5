/**
 * Edge nodes and devices of one OPD with the time each was last seen, from the catalogue
 * (GET /opds/{opd}) and the newest point of each stream (GET /opds/{opd}/latest).
 */

import { h } from "../dom.js";
import { formatDuration, formatMoment, formatNumber } from "../format.js";
import { t, tOr } from "../i18n.js";
import { cell, dataTable, flash, section } from "./common.js";

/**
 * Build the devices section and return {element, applyReading}.
 *
 * latestByStream: {room, energy, attendance, status} responses of /latest. A device is online
 * when its newest point is at most offlineAfterS old, the rule of the API's overview.
 */
export function devicesSection({ detail, latestByStream, offlineAfterS }) {
  const lastSeen = new Map();
  for (const stream of ["room", "energy", "attendance"]) {
    for (const reading of latestByStream[stream].readings) {
      const key = deviceKey(reading.node, reading.device);
      if (!lastSeen.has(key) || lastSeen.get(key).ts < reading.ts) {
        lastSeen.set(key, { ts: reading.ts, time: reading.time });
      }
    }
  }

  const devices = [];
  for (const node of detail.nodes) {
    for (const device of node.devices) {
      devices.push({ node: node.id, id: device.id, kind: device.kind, place: device.room ?? device.circuit ?? "" });
    }
  }
  const listed = new Set(devices.map((device) => deviceKey(device.node, device.id)));
  for (const key of lastSeen.keys()) {
    if (!listed.has(key)) {
      const [node, id] = key.split("/");
      devices.push({ node, id, kind: "", place: "" });
    }
  }

  const deviceCells = new Map();
  const deviceRows = devices.map((device) => {
    const seen = lastSeen.get(deviceKey(device.node, device.id));
    const cells = {
      seen: h("span", { "data-field": "last-seen" }),
      state: h("span", { "data-field": "state" }),
    };
    showSeen(cells, seen ?? null, offlineAfterS);
    deviceCells.set(deviceKey(device.node, device.id), cells);
    return {
      attributes: { dataset: { node: device.node, device: device.id } },
      cells: [device.id, device.node, device.kind ? tOr(`devices.kind.${device.kind}`, device.kind) : t("devices.not_in_catalogue"), device.place, cell(cells.seen, {}), cell(cells.state, {})],
    };
  });

  const nodeCells = new Map();
  const statusByNode = new Map(latestByStream.status.readings.map((reading) => [reading.node, reading]));
  const nodes = detail.nodes.map((node) => ({ id: node.id, name: node.name }));
  for (const nodeId of statusByNode.keys()) {
    if (!nodes.some((node) => node.id === nodeId)) {
      nodes.push({ id: nodeId, name: nodeId });
    }
  }
  const nodeRows = nodes.map((node) => {
    const status = statusByNode.get(node.id);
    const cells = {
      state: h("span", { "data-field": "node-state" }),
      version: h("span", { "data-field": "sw-version" }),
      uptime: h("span", { "data-field": "uptime" }),
      queue: h("span", { "data-field": "queue-depth" }),
      seen: h("span", { "data-field": "last-seen" }),
    };
    showNodeStatus(cells, status ?? null);
    nodeCells.set(node.id, cells);
    return { attributes: { dataset: { node: node.id } }, cells: [node.id, node.name, cell(cells.state, {}), cell(cells.version, {}), cell(cells.uptime, {}), cell(cells.queue, {}), cell(cells.seen, {})] };
  });

  const element = section(
    "devices",
    t("devices.title"),
    dataTable({
      caption: t("devices.nodes_caption"),
      columns: [
        { label: t("devices.node"), header: true },
        { label: t("devices.name") },
        { label: t("devices.state") },
        { label: t("devices.sw_version") },
        { label: t("devices.uptime") },
        { label: t("devices.queue_depth"), numeric: true },
        { label: t("devices.last_seen") },
      ],
      rows: nodeRows,
      emptyText: t("devices.no_nodes"),
    }),
    dataTable({
      caption: t("devices.devices_caption"),
      columns: [
        { label: t("devices.device"), header: true },
        { label: t("devices.node") },
        { label: t("devices.kind") },
        { label: t("devices.place") },
        { label: t("devices.last_seen") },
        { label: t("devices.state") },
      ],
      rows: deviceRows,
      emptyText: t("devices.no_devices"),
    }),
    h("p", { class: "hint" }, t("devices.offline_rule", { minutes: formatNumber(offlineAfterS / 60, 0) })),
  );

  return {
    element,
    applyReading(reading) {
      if (reading.stream === "status") {
        const cells = nodeCells.get(reading.node);
        if (cells) {
          showNodeStatus(cells, { values: reading, time: reading.time });
          flash(cells.state);
        }
        return;
      }
      const cells = deviceCells.get(deviceKey(reading.node, reading.device));
      if (cells) {
        showSeen(cells, { ts: reading.ts, time: reading.time }, offlineAfterS);
        flash(cells.seen);
      }
    },
  };
}

function showSeen(cells, seen, offlineAfterS) {
  cells.seen.textContent = seen ? formatMoment(seen.time) : t("devices.never");
  const online = seen !== null && Date.now() - seen.ts <= offlineAfterS * 1000;
  cells.state.textContent = online ? t("state.online") : t("state.offline");
  cells.state.className = online ? "badge badge--ok" : "badge badge--muted";
}

function showNodeStatus(cells, status) {
  if (!status) {
    cells.state.textContent = t("state.unknown");
    cells.state.className = "badge badge--muted";
    for (const name of ["version", "uptime", "queue", "seen"]) {
      cells[name].textContent = "—";
    }
    return;
  }
  const values = status.values;
  const state = values.state ?? "unknown";
  cells.state.textContent = tOr(`state.${state}`, state);
  cells.state.className = `badge badge--${NODE_STATE_BADGES[state] ?? "muted"}`;
  cells.version.textContent = values.sw_version ?? "—";
  cells.uptime.textContent = formatDuration(values.uptime_s ?? null);
  cells.queue.textContent = formatNumber(values.queue_depth ?? null, 0);
  cells.seen.textContent = formatMoment(status.time);
}

const NODE_STATE_BADGES = { online: "ok", offline: "critical" };

function deviceKey(node, device) {
  return `${node}/${device}`;
}
