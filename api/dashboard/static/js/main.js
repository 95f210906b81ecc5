/**
 * Start of the dashboard: load the deployment facts (GET /api/v1/meta) and the labels,
 * fill the page frame, then render the view of the location hash on every change.
 */

import { getJson, onUnauthorized } from "./api.js";
import { clearSession, currentSession, currentUser, updateSessionUser } from "./auth.js";
import { h } from "./dom.js";
import { configureZone } from "./format.js";
import { currentLanguage, preferredLanguage, t, translateStatic, useLanguage } from "./i18n.js";
import { isRouteHash, parseRoute, routeHref } from "./router.js";
import { renderAlerts } from "./views/alerts.js";
import { errorBox, pageHeader } from "./views/common.js";
import { renderExports } from "./views/exports.js";
import { renderLogin } from "./views/login.js";
import { renderNodes } from "./views/nodes.js";
import { renderOpd } from "./views/opd.js";
import { renderOverview } from "./views/overview.js";

const VIEWS = {
  overview: renderOverview,
  opd: renderOpd,
  alerts: renderAlerts,
  nodes: renderNodes,
  exports: renderExports,
  login: renderLogin,
  not_found: renderNotFound,
};

/** Shared state the views receive: deployment facts and callbacks into the page frame. */
const app = {
  meta: null,
  setLiveState,
  refreshUser: renderUserBox,
};

let closeView = () => {};
let renderCount = 0;

async function boot() {
  const main = document.getElementById("main");
  try {
    await useLanguage(preferredLanguage());
  } catch (error) {
    main.replaceChildren(h("p", { class: "error-box", role: "alert" }, `Label bahasa gagal dimuat / Labels failed to load: ${error.message}`));
    return;
  }
  translateStatic();

  try {
    app.meta = await getJson("meta");
  } catch (error) {
    main.replaceChildren(pageHeader(t("error.start_title")), errorBox(error), h("button", { type: "button", class: "button", onclick: () => window.location.reload() }, t("common.retry")));
    return;
  }
  configureZone(app.meta.timezone, app.meta.timezone_abbreviation);
  fillFrame();

  onUnauthorized(() => {
    renderUserBox();
    if (parseRoute(window.location.hash).name !== "login") {
      window.location.hash = routeHref("login", null, { next: window.location.hash || "#/" });
    }
  });
  if (app.meta.features.auth && currentSession()) {
    try {
      updateSessionUser(await getJson("auth/me"));
    } catch {
      // A 401 has already cleared the session and opened the login screen; other errors show in the view.
    }
  }
  renderUserBox();

  document.getElementById("language-select").addEventListener("change", changeLanguage);
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  window.addEventListener("hashchange", () => renderRoute(true));
  await renderRoute(false);
}

function fillFrame() {
  document.getElementById("regency-name").textContent = app.meta.regency.name;
  document.getElementById("zone-note").textContent = t("footer.zone", { abbreviation: app.meta.timezone_abbreviation, zone: app.meta.timezone, offset: app.meta.utc_offset });
  document.getElementById("language-select").value = currentLanguage();
  setLiveState(document.getElementById("live-status").dataset.state);
}

async function changeLanguage(event) {
  await useLanguage(event.target.value);
  translateStatic();
  fillFrame();
  renderUserBox();
  await renderRoute(false);
}

/** Render the view of the current hash into a fresh container, so a slower earlier view cannot overwrite it. */
async function renderRoute(moveFocus) {
  if (!isRouteHash(window.location.hash)) {
    return;
  }
  const route = parseRoute(window.location.hash);
  closeView();
  closeView = () => {};
  setLiveState("idle");
  markNavigation(route.name);

  const count = ++renderCount;
  const main = document.getElementById("main");
  const view = h("div", { class: `view view--${route.name}` }, h("p", { class: "loading", role: "status" }, t("common.loading")));
  main.replaceChildren(view);
  main.setAttribute("aria-busy", "true");

  let close = () => {};
  try {
    close = (await VIEWS[route.name](view, route, app)) ?? (() => {});
  } catch (error) {
    if (count === renderCount) {
      view.replaceChildren(pageHeader(t("error.page_title")), errorBox(error));
    }
  }
  if (count !== renderCount) {
    close();
    return;
  }
  closeView = close;
  main.removeAttribute("aria-busy");

  const heading = view.querySelector("h1");
  document.title = heading ? `${heading.textContent} · Kantor Pintar` : "Kantor Pintar";
  if (moveFocus && heading) {
    heading.focus();
  }
}

function markNavigation(name) {
  const section = name === "opd" ? "overview" : name;
  for (const link of document.querySelectorAll(".site-nav a")) {
    if (link.dataset.route === section) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
}

function setLiveState(state) {
  const element = document.getElementById("live-status");
  element.dataset.state = state;
  element.querySelector(".live-status__label").textContent = t(`live.${state}`);
}

function renderUserBox() {
  const box = document.getElementById("user-box");
  if (!app.meta?.features.auth) {
    box.replaceChildren();
    return;
  }
  const user = currentUser();
  if (!user) {
    box.replaceChildren(h("a", { href: routeHref("login", null, { next: window.location.hash || "#/" }), class: "user-box__login" }, t("login.link")));
    return;
  }
  const logout = h("button", { type: "button", class: "button button--small" }, t("login.logout"));
  logout.addEventListener("click", () => {
    clearSession();
    renderUserBox();
    window.location.hash = routeHref("login");
  });
  box.replaceChildren(
    h("span", { class: "user-box__name", "data-field": "user" }, t("login.signed_in_as", { user: user.username, role: t(`role.${user.role}`) })),
    logout,
  );
}

async function renderNotFound(container, route) {
  container.replaceChildren(
    pageHeader(t("not_found.title")),
    h("p", {}, t("not_found.text", { path: route.params.path })),
    h("p", {}, h("a", { href: routeHref("overview") }, t("not_found.back"))),
  );
  return () => {};
}

boot();
