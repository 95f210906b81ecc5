/** Building blocks shared by the views: headings, error boxes, tables, selects and downloads. */

import { getFile } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";

/** Return the page's <h1> block; the h1 receives focus after navigation, for keyboard and screen-reader users. */
export function pageHeader(title, ...details) {
  return h("div", { class: "page-header" }, h("h1", { tabindex: "-1" }, title), ...details);
}

/** Return a box that shows a failed request's message, as the API wrote it, with its code and parameter. */
export function errorBox(error, contextKey = null) {
  const lines = [];
  if (contextKey) {
    lines.push(h("p", { class: "error-box__context" }, t(contextKey)));
  }
  lines.push(h("p", { class: "error-box__detail" }, error.detail ?? error.message));
  const facts = [];
  if (error.status) {
    facts.push(t("error.status", { status: error.status }));
  }
  if (error.code) {
    facts.push(t("error.code", { code: error.code }));
  }
  if (error.parameter) {
    facts.push(t("error.parameter", { parameter: error.parameter }));
  }
  if (facts.length) {
    lines.push(h("p", { class: "error-box__facts" }, facts.join(" · ")));
  }
  return h("div", { class: "error-box", role: "alert" }, lines);
}

/** Return a note that an optional screen has no API route yet. */
export function unavailableBox(featureKey) {
  return h("div", { class: "notice", role: "status" }, h("p", {}, t("feature.unavailable", { feature: t(featureKey) })));
}

/** Return a section with an <h2> and an id derived from `name`, for aria-labelledby. */
export function section(name, title, ...content) {
  const headingId = `section-${name}`;
  return h("section", { class: "panel", "aria-labelledby": headingId, dataset: { section: name } }, h("h2", { id: headingId }, title), ...content);
}

/**
 * Return a table inside a scrollable region that the keyboard can reach.
 *
 * columns: [{label, numeric}], rows: arrays of cells (text or nodes), or {cells, attributes}.
 */
export function dataTable({ caption, columns, rows, emptyText = null, attributes = {} }) {
  const head = h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col", class: column.numeric ? "numeric" : null }, column.label))));
  const body = h("tbody");
  for (const row of rows) {
    const cells = Array.isArray(row) ? row : row.cells;
    const rowAttributes = Array.isArray(row) ? {} : row.attributes ?? {};
    body.append(
      h(
        "tr",
        rowAttributes,
        cells.map((value, index) => {
          const column = columns[index];
          const tag = column.header ? "th" : "td";
          const cellAttributes = value instanceof Cell ? value.attributes : {};
          const content = value instanceof Cell ? value.content : value;
          return h(tag, { scope: column.header ? "row" : null, class: column.numeric ? "numeric" : null, ...cellAttributes }, content);
        }),
      ),
    );
  }
  if (rows.length === 0 && emptyText) {
    body.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, emptyText)));
  }
  const table = h("table", attributes, h("caption", {}, caption), head, body);
  return h("div", { class: "table-wrap", role: "region", "aria-label": caption, tabindex: "0" }, table);
}

/** Content of a dataTable cell with attributes for its <td>. */
class Cell {
  constructor(content, attributes) {
    this.content = content;
    this.attributes = attributes;
  }
}

/** Return a cell value with attributes for its <td>, for dataTable: cell("25,4", {"data-column": "temperature_c"}). */
export function cell(content, attributes = {}) {
  return new Cell(content, attributes);
}

/** Return a labelled <select> of OPDs; onChange receives the chosen id. */
export function opdSelect({ id, opds, selected, onChange, includeAll = false }) {
  const select = h("select", { id, onchange: (event) => onChange(event.target.value) });
  if (includeAll) {
    select.append(h("option", { value: "" }, t("common.all_opds")));
  }
  for (const opd of opds) {
    select.append(h("option", { value: opd.id, selected: opd.id === selected }, opd.name === opd.id ? opd.id : `${opd.name} (${opd.id})`));
  }
  return h("label", { class: "field", for: id }, h("span", { class: "field__label" }, t("common.opd")), select);
}

/**
 * Return a link that downloads an export through fetch, so the bearer token is sent and
 * an error response is shown in `statusElement` instead of being saved as a file.
 */
export function downloadLink({ label, path, params, fallbackName, statusElement, attributes = {} }) {
  const link = h("a", { class: "button button--secondary", href: "#", ...attributes }, label);
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    statusElement.replaceChildren(h("p", { role: "status" }, t("exports.preparing", { file: fallbackName })));
    try {
      const { blob, filename } = await getFile(path, params, fallbackName);
      const url = URL.createObjectURL(blob);
      const anchor = h("a", { href: url, download: filename, hidden: true });
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      statusElement.replaceChildren(h("p", { role: "status" }, t("exports.done", { file: filename })));
    } catch (error) {
      statusElement.replaceChildren(errorBox(error, "exports.failed"));
    }
  });
  return link;
}

/** Briefly highlight an element whose value a live event changed. */
export function flash(element) {
  element.classList.remove("flash");
  // Reading offsetWidth restarts the CSS animation when the same cell changes twice in a row.
  void element.offsetWidth;
  element.classList.add("flash");
}
