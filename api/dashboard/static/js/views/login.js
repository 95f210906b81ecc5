/**
 * Login screen (#/login?next=<route>): OAuth2 password form posted to POST /api/v1/auth/token.
 * After a 401 the dashboard opens this screen with the route to return to.
 */

import { postForm } from "../api.js";
import { saveSession } from "../auth.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { isRouteHash } from "../router.js";
import { errorBox, pageHeader } from "./common.js";

export async function renderLogin(container, route, app) {
  const status = h("div", { class: "action-status", "aria-live": "assertive" });
  const username = h("input", { id: "login-username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "button" }, t("login.submit"));

  const form = h(
    "form",
    { class: "login-form", "aria-labelledby": "login-title" },
    h("label", { class: "field", for: username.id }, h("span", { class: "field__label" }, t("login.username")), username),
    h("label", { class: "field", for: password.id }, h("span", { class: "field__label" }, t("login.password")), password),
    h("p", { class: "button-row" }, submit),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.replaceChildren(h("p", { role: "status" }, t("login.signing_in")));
    try {
      const answer = await postForm("auth/token", { username: username.value, password: password.value }, { redirectOn401: false });
      saveSession(answer);
      password.value = "";
      app.refreshUser();
      const next = route.query.next && isRouteHash(route.query.next) && !route.query.next.startsWith("#/login") ? route.query.next : "#/";
      window.location.hash = next;
    } catch (error) {
      submit.disabled = false;
      status.replaceChildren(errorBox(error, "login.failed"));
      password.select();
    }
  });

  const header = pageHeader(t("login.title"));
  header.querySelector("h1").id = "login-title";
  container.replaceChildren(
    header,
    app.meta.features.auth ? h("p", { class: "hint" }, t("login.intro")) : h("div", { class: "notice", role: "status" }, h("p", {}, t("login.not_required"))),
    form,
  );
  return () => {};
}
