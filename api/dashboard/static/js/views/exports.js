/**
 * Monthly exports (#/exports): the attendance recap and the energy report of one OPD and
 * month as CSV or XLSX, from GET /opds/{opd}/exports/attendance|energy?month=&format=.
 */

import { getJson } from "../api.js";
import { h } from "../dom.js";
import { formatCalendarMonth, todayInZone } from "../format.js";
import { t } from "../i18n.js";
import { routeHref } from "../router.js";
import { downloadLink, opdSelect, pageHeader, section } from "./common.js";

const EXPORTS = [
  { kind: "attendance", stem: "rekap-kehadiran" },
  { kind: "energy", stem: "laporan-energi" },
];
const FORMATS = ["xlsx", "csv"];

/** Return the current month in the deployment's zone, YYYY-MM. */
export function currentMonth() {
  return todayInZone().slice(0, 7);
}

/** Build the month field and the four download links of one OPD. */
export function exportControls(opd, month, idPrefix = "export") {
  const status = h("div", { class: "export-status", "aria-live": "polite" });
  const links = h("div", { class: "export-links" });
  const monthInput = h("input", { type: "month", id: `${idPrefix}-month`, value: month, max: currentMonth(), required: true });

  function fillLinks() {
    const chosen = monthInput.value || currentMonth();
    links.replaceChildren(
      ...EXPORTS.map(({ kind, stem }) =>
        h(
          "div",
          { class: "export-group" },
          h("h3", {}, t(`exports.${kind}`, { month: formatCalendarMonth(chosen) })),
          h(
            "p",
            { class: "button-row" },
            FORMATS.map((format) =>
              downloadLink({
                label: t("exports.download", { format: format.toUpperCase() }),
                path: `opds/${encodeURIComponent(opd)}/exports/${kind}`,
                params: { month: chosen, format },
                fallbackName: `${stem}-${opd}-${chosen}.${format}`,
                statusElement: status,
                attributes: { "data-export": `${kind}-${format}`, "aria-label": `${t(`exports.${kind}`, { month: formatCalendarMonth(chosen) })}, ${format.toUpperCase()}` },
              }),
            ),
          ),
        ),
      ),
    );
  }
  monthInput.addEventListener("change", fillLinks);
  fillLinks();

  return h(
    "div",
    { class: "exports" },
    h("label", { class: "field", for: monthInput.id }, h("span", { class: "field__label" }, t("exports.month")), monthInput),
    links,
    status,
  );
}

/** Render the exports page. */
export async function renderExports(container, route) {
  const opds = await getJson("opds");
  const selected = route.query.opd && opds.some((opd) => opd.id === route.query.opd) ? route.query.opd : opds[0]?.id;
  const month = /^\d{4}-\d{2}$/.test(route.query.month ?? "") ? route.query.month : currentMonth();
  const choose = opdSelect({
    id: "exports-opd",
    opds,
    selected,
    onChange: (opd) => {
      window.location.hash = routeHref("exports", null, { opd, month });
    },
  });

  container.replaceChildren(
    pageHeader(t("exports.title")),
    h("p", { class: "hint" }, t("exports.intro")),
    choose,
    selected ? section("exports", t("exports.for_opd", { opd: opds.find((opd) => opd.id === selected).name }), exportControls(selected, month)) : h("p", { class: "empty" }, t("exports.no_opds")),
  );
  return () => {};
}
