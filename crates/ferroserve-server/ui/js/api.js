// The HTTP API as the UI calls it: with the key signed in with, kept for
// this tab only (sessionStorage), and errors carrying the server's message.

const KEY = "ferroserve.key";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function signedIn() {
  return sessionStorage.getItem(KEY) !== null;
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

/** Checks `key` with the server; kept only when the server knows it. */
export async function signIn(key) {
  const who = await call("/api/v1/whoami", { key });
  if (who.anonymous) throw new ApiError(401, "this server needs no key: sign in with any");
  sessionStorage.setItem(KEY, key);
  return who;
}

/** The authorization header of the signed-in key, or null. */
export function authorization() {
  const token = sessionStorage.getItem(KEY);
  return token ? `Bearer ${token}` : null;
}

/**
 * Calls the API: `body` is sent as JSON; the answer is JSON, or text when
 * `accept` asks for another type. A failed call throws an ApiError with
 * what the server said.
 */
export async function call(path, { method = "GET", body, accept = "application/json", key } = {}) {
  const headers = { accept };
  const token = key ?? sessionStorage.getItem(KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const answer = await response.json();
      message = answer.error || answer.message || message;
    } catch {
      // Not JSON: the status says it.
    }
    throw new ApiError(response.status, message);
  }
  if (response.status === 204) return null;
  return accept === "application/json" ? response.json() : response.text();
}

/** A path segment: a model name or alias, encoded. */
export function seg(name) {
  return encodeURIComponent(name);
}
