/**
 * Live view: Server-Sent Events from GET /api/v1/live.
 *
 * The API sends "reading" events (one per new MQTT reading), "alert" events (the alert as
 * GET /api/v1/alerts lists it, plus `change`: opened, severity_changed, closed or
 * acknowledged) and "dropped" events (this client read too slowly and lost `count` events).
 * After a dropped connection EventSource reconnects on its own, after the delay the API sends
 * (retry: 5000). After an error status such as 401 it stops, and onState receives "closed".
 * EventSource does not report which status ended it, so a closed stream requests
 * GET /api/v1/auth/me. For an expired token that request gets the 401 that opens the login screen.
 */

import { apiUrl, getJson } from "./api.js";
import { currentToken } from "./auth.js";

/**
 * Open the stream, filtered to `opd` when given, and return a function that closes it.
 *
 * onState receives "connecting", "open" or "closed". EventSource cannot send headers, so the
 * token goes in the query as access_token.
 */
export function openLiveStream({ opd = null, onReading = () => {}, onAlert = () => {}, onDropped = () => {}, onState = () => {} }) {
  const url = apiUrl("live", { opd, access_token: currentToken() });
  const source = new EventSource(url);
  onState("connecting");

  source.addEventListener("open", () => onState("open"));
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.CLOSED) {
      onState("connecting");
      return;
    }
    onState("closed");
    getJson("auth/me").catch(() => {});
  });
  source.addEventListener("reading", (event) => dispatch(event, onReading));
  source.addEventListener("alert", (event) => dispatch(event, onAlert));
  source.addEventListener("dropped", (event) => dispatch(event, onDropped));

  // Closing on purpose reports nothing: the page that closes a stream is being replaced, and
  // a late "closed" would overwrite the state of the next page's stream.
  return () => {
    source.close();
  };
}

function dispatch(event, handler) {
  let data;
  try {
    data = JSON.parse(event.data);
  } catch (error) {
    console.warn(`live view: event '${event.type}' has invalid JSON data and is skipped: ${error.message}`);
    return;
  }
  handler(data);
}
