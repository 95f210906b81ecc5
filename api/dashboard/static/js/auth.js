/**
 * Login session: the bearer token from POST /api/v1/auth/token and the user it belongs to.
 *
 * The session is kept in sessionStorage, so it ends when the tab is closed, which suits
 * shared office computers. The token is never written to the console or to a URL except
 * the live stream's, because EventSource cannot send an Authorization header.
 */

const STORAGE_KEY = "smartoffice.session";

/** Roles of the API, strongest first. */
export const ROLES = ["admin", "facility_manager", "leadership", "integration"];

/** Return the stored session {token, user, expiresAt}, or null when there is none or it has expired. */
export function currentSession() {
  let session = null;
  try {
    session = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || "null");
  } catch {
    return null;
  }
  if (!session || !session.token) {
    return null;
  }
  if (session.expiresAt && session.expiresAt <= Date.now()) {
    clearSession();
    return null;
  }
  return session;
}

/** Store the response of POST /api/v1/auth/token. */
export function saveSession(tokenResponse) {
  const session = {
    token: tokenResponse.access_token,
    user: tokenResponse.user,
    expiresAt: tokenResponse.expires_in ? Date.now() + tokenResponse.expires_in * 1000 : null,
  };
  window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  return session;
}

/** Replace the stored user with the response of GET /api/v1/auth/me. */
export function updateSessionUser(user) {
  const session = currentSession();
  if (session) {
    window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ ...session, user }));
  }
}

export function clearSession() {
  try {
    window.sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage blocked: there is nothing stored to clear.
  }
}

/** Return the bearer token, or null when no user is logged in. */
export function currentToken() {
  return currentSession()?.token ?? null;
}

/** Return the logged-in user {username, role, opds}, or null. */
export function currentUser() {
  return currentSession()?.user ?? null;
}

/** Return true when the user may acknowledge alerts: admins and facility managers. Without a session the API decides. */
export function mayAcknowledge() {
  const user = currentUser();
  return user === null || user.role === "admin" || user.role === "facility_manager";
}

/** Return true when the logged-in user is an admin, who alone may edit node configurations. */
export function isAdmin() {
  return currentUser()?.role === "admin";
}
