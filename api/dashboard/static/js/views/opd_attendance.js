/**
 * Attendance recap (rekap kehadiran) of one OPD for the current month, from
 * GET /opds/{opd}/attendance/recap: totals per status and one row per employee (NIP).
 */

import { h } from "../dom.js";
import { EMPTY, formatCalendarDate, formatCalendarMonth, formatNumber } from "../format.js";
import { t } from "../i18n.js";
import { dataTable, section } from "./common.js";

/** Statuses of the recap, in the order the API documents them. */
export const RECAP_STATUSES = ["present", "late", "early_leave", "missing_checkout", "absent", "non_workday"];

/** Build the recap section from the API's response. */
export function attendanceSection(recap) {
  const month = recap.start.slice(0, 7);
  const totals = h(
    "dl",
    { class: "totals" },
    h("div", { class: "totals__item" }, h("dt", {}, t("recap.workdays")), h("dd", { "data-field": "recap-workdays" }, formatNumber(recap.workdays, 0))),
    h("div", { class: "totals__item" }, h("dt", {}, t("recap.employees")), h("dd", { "data-field": "recap-employees" }, formatNumber(recap.employee_count, 0))),
    RECAP_STATUSES.map((status) =>
      h("div", { class: `totals__item status-${status}` }, h("dt", {}, t(`recap.status.${status}`)), h("dd", { "data-field": `recap-total-${status}` }, formatNumber(recap.totals[status], 0))),
    ),
  );

  // An API that hides personal data from the caller's role sends employees_shown false and no rows.
  const table = recap.employees_shown === false
    ? h("p", { class: "notice", "data-field": "recap-hidden" }, t("recap.hidden"))
    : dataTable({
      caption: t("recap.caption", { month: formatCalendarMonth(month) }),
      columns: [
        { label: "NIP", header: true },
        { label: t("recap.name") },
        ...RECAP_STATUSES.map((status) => ({ label: t(`recap.status.${status}`), numeric: true })),
      ],
      rows: recap.employees.map((employee) => ({
        attributes: { dataset: { employee: employee.employee_id } },
        cells: [employeeId(employee), employee.name ?? EMPTY, ...RECAP_STATUSES.map((status) => formatNumber(employee.counts[status], 0))],
      })),
      emptyText: t("recap.none"),
    });

  return section(
    "attendance",
    t("recap.title", { month: formatCalendarMonth(month) }),
    h("p", { class: "hint" }, t("recap.range", { start: formatCalendarDate(recap.start), end: formatCalendarDate(recap.end) })),
    totals,
    table,
    h("p", { class: "hint" }, t("recap.note")),
  );
}

/** Show the NIP, or the terminal's id when the OPD's employee list has no NIP for it (often a keyed pseudonym). */
function employeeId(employee) {
  if (employee.nip) {
    return employee.nip;
  }
  return h("span", { class: "pseudonym", title: t("recap.no_nip") }, employee.employee_id);
}
