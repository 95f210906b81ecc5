/**
 * Client of the Kantor Pintar API.
 *
 * Every request requests messages in the dashboard's language (Accept-Language) and carries
 * the bearer token when someone is logged in. A failed request raises ApiError with the
 * API's {detail, code, parameter}, so a view can show the API's own message. A 401 ends
 * the session and calls the handler set with onUnauthorized, which opens the login screen.
 */

import { clearSession, currentToken } from "./auth.js";
import { currentLanguage, t } from "./i18n.js";

/** Root of the API's version 1 routes, relative to the dashboard page at /dashboard/. */
const API_ROOT = new URL("../api/v1/", window.location.href);

let unauthorizedHandler = () => {};

/** An error response of the API, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail);
    this.name = "ApiError";
    this.status = status;
    this.detail = body.detail;
    this.code = body.code ?? null;
    this.parameter = body.parameter ?? null;
  }
}

/** Set the function called after a 401, with no argument. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** Return the absolute URL of an API route such as "opds/dinkes/latest"; null parameters are left out. */
export function apiUrl(path, params = {}) {
  const url = new URL(path, API_ROOT);
  for (const [name, value] of Object.entries(params)) {
    const values = Array.isArray(value) ? value : [value];
    for (const item of values) {
      if (item !== null && item !== undefined && item !== "") {
        url.searchParams.append(name, String(item));
      }
    }
  }
  return url.toString();
}

/** GET a route and return its JSON. */
export function getJson(path, params = {}) {
  return send("GET", path, { params });
}

/** POST JSON (or nothing) and return the JSON response. */
export function postJson(path, body = undefined) {
  return send("POST", path, { json: body });
}

/** PUT JSON and return the JSON response. */
export function putJson(path, body) {
  return send("PUT", path, { json: body });
}

/** POST an HTML-form body (application/x-www-form-urlencoded), as OAuth2's password flow needs. */
export function postForm(path, fields, { redirectOn401 = true } = {}) {
  return send("POST", path, { form: fields, redirectOn401 });
}

/** GET a file and return {blob, filename}, the name from Content-Disposition or `fallbackName`. */
export async function getFile(path, params, fallbackName) {
  const response = await fetchOrFail("GET", apiUrl(path, params), {}, true);
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  return { blob: await response.blob(), filename: match ? match[1] : fallbackName };
}

async function send(method, path, { params = {}, json, form, redirectOn401 = true }) {
  const init = {};
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers = { "Content-Type": "application/json" };
  } else if (form !== undefined) {
    init.body = new URLSearchParams(form);
  }
  const response = await fetchOrFail(method, apiUrl(path, params), init, redirectOn401);
  return response.status === 204 ? null : response.json();
}

async function fetchOrFail(method, url, init, redirectOn401) {
  const headers = { Accept: "application/json", "Accept-Language": currentLanguage(), ...(init.headers || {}) };
  const token = currentToken();
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }

  let response;
  try {
    response = await fetch(url, { ...init, method, headers });
  } catch {
    throw new ApiError(0, { detail: t("error.network"), code: "network_error" });
  }
  if (response.ok) {
    return response;
  }

  const error = new ApiError(response.status, await errorBody(response));
  if (response.status === 401 && redirectOn401) {
    clearSession();
    unauthorizedHandler();
  }
  throw error;
}

async function errorBody(response) {
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") {
      return body;
    }
    // A FastAPI error that bypasses the API's handlers may carry a list or object as detail.
    return { detail: t("error.http", { status: response.status }), code: body?.code ?? null };
  } catch {
    return { detail: t("error.http", { status: response.status }), code: "http_error" };
  }
}
