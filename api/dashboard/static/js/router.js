/**
 * Hash routes of the dashboard: #/, #/opd/<id>, #/alerts, #/nodes[/<opd>], #/exports, #/login.
 *
 * Hash routes keep the whole dashboard on one page that the API serves as a plain file.
 * A hash that does not start with "#/" (such as the skip link's "#main") is no route.
 */

/** Return {name, params, query} of a location hash. */
export function parseRoute(hash) {
  const text = hash.startsWith("#/") ? hash.slice(2) : "";
  const [pathText, queryText = ""] = text.split("?");
  const parts = pathText.split("/").filter(Boolean).map(decodeURIComponent);
  const query = Object.fromEntries(new URLSearchParams(queryText));

  if (parts.length === 0) {
    return { name: "overview", params: {}, query };
  }
  const [first, second] = parts;
  if (first === "opd" && second && parts.length === 2) {
    return { name: "opd", params: { opd: second }, query };
  }
  if (first === "nodes" && parts.length <= 2) {
    return { name: "nodes", params: { opd: second ?? null }, query };
  }
  if (["alerts", "exports", "login"].includes(first) && parts.length === 1) {
    return { name: first, params: {}, query };
  }
  return { name: "not_found", params: { path: pathText }, query };
}

/** Return true when `hash` is a route, false for in-page anchors such as "#main". */
export function isRouteHash(hash) {
  return hash === "" || hash === "#" || hash.startsWith("#/");
}

/** Build a route hash: routeHref("opd", "dinkes") → "#/opd/dinkes"; null query values are left out. */
export function routeHref(name, id = null, query = {}) {
  const path = name === "overview" ? "" : name;
  const idPart = id ? `/${encodeURIComponent(id)}` : "";
  const entries = Object.entries(query).filter(([, value]) => value !== null && value !== undefined && value !== "");
  const queryPart = entries.length ? `?${new URLSearchParams(entries)}` : "";
  return `#/${path}${idPart}${queryPart}`;
}
