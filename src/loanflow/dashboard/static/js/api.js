// Same-origin JSON calls with the session cookie; state changes carry the CSRF token
// (the server checks it against the one signed into the cookie: double submit).

export class ApiError extends Error {
  /**
   * `status` 0 means the server could not be reached at all; `problem` is the RFC 9457
   * body when there was one (its `type` tells two 409s apart).
   */
  constructor(status, message, problem = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }

  /** The problem type's last segment ("review-already-decided"), or "". */
  get type() {
    return String(this.problem?.type ?? "").split("/").pop();
  }

  /** Words for an operator: what is wrong, not a stack trace. */
  get summary() {
    if (this.status === 0) return "server unreachable";
    // A 404 without a problem body is a route this server lacks (an older version); with
    // one, the thing asked for is not there, and the problem says which.
    if (this.status === 404 && !this.problem) return "not available on this server (HTTP 404)";
    return `${this.message} (HTTP ${this.status})`;
  }
}

/**
 * A small client bound to the page's state: `state.session.csrf` for state changes,
 * `onSignedOut` when the session has expired or was revoked (HTTP 401).
 */
export function createApi(state, { onSignedOut }) {
  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = state.session?.csrf ?? "";
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let answer;
    try {
      answer = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        redirect: "manual",
      });
    } catch {
      throw new ApiError(0, "server unreachable");
    }
    // `redirect: "manual"`: a 303 (after /logout) is the answer, not a page to fetch.
    if (answer.type === "opaqueredirect") return null;
    if (answer.status === 401) onSignedOut();
    if (!answer.ok) throw await problemError(answer);
    const type = answer.headers.get("content-type") || "";
    return type.includes("json") ? answer.json() : null;
  }

  /**
   * A GET whose body the caller reads as it arrives (a CSV export): the answer itself,
   * once its status is known to be a success. `signal` aborts it (an AbortError).
   */
  async function stream(path, { signal, accept = "text/csv" } = {}) {
    let answer;
    try {
      answer = await fetch(path, {
        headers: { Accept: accept }, credentials: "same-origin", redirect: "manual", signal,
      });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "server unreachable");
    }
    if (answer.status === 401) onSignedOut();
    if (!answer.ok) throw await problemError(answer);
    return answer;
  }

  return {
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body),
    stream,
  };
}

/** An ApiError from a failed answer: its RFC 9457 `detail` (or `title`), else the status text. */
async function problemError(answer) {
  let problem = null;
  try {
    problem = await answer.json();
  } catch {
    // Not JSON (a proxy's page): the status text says what there is to say.
  }
  const message = problem?.detail || problem?.title || answer.statusText || "request failed";
  return new ApiError(answer.status, String(message), problem);
}

/** A query string from the non-empty values of an object. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value != null && value !== "") q.set(key, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}
