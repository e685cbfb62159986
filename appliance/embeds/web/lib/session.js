// The cookie-less embed session (decisions D3). The signed-URL token is read from our own path and
// exchanged for a session JWT + refresh token; both live only in this closure (no cookie, no
// localStorage, no sessionStorage). Every API call carries `Authorization: Bearer <jwt>`; the session
// refreshes itself before expiry (rotating the refresh token) and, when it can't continue, calls
// onExpired once (the page then posts {type:"session", event:"expired"} to the host).

export function tokenFromPath() {
  const parts = window.location.pathname.split("/").filter(Boolean);
  return parts[parts.length - 1] || "";
}

export function createSession({ kind, onExpired, onRefreshed }) {
  let jwt = null;
  let refreshToken = null;
  let timer = null;
  let expired = false;
  let refreshing = null;

  function expire(reason) {
    if (expired) return;
    expired = true;
    jwt = null;
    refreshToken = null;
    if (timer) clearTimeout(timer);
    if (onExpired) onExpired(reason);
  }

  function accept(body) {
    jwt = body.session;
    refreshToken = body.refreshToken;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => { refresh().catch(() => {}); }, Math.max(1, body.refreshIn) * 1000);
    return body.context;
  }

  async function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "omit",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  async function open() {
    const token = tokenFromPath();
    const response = await post("/embed/api/session", { token, kind });
    if (!response.ok) { expire("exchange refused"); throw new Error("session refused"); }
    return accept(await response.json());
  }

  function refresh() {
    if (expired) return Promise.reject(new Error("expired"));
    if (!refreshing) {
      refreshing = (async () => {
        const response = await post("/embed/api/session/refresh", { refreshToken });
        if (!response.ok) { expire("refresh refused"); throw new Error("refresh refused"); }
        const context = accept(await response.json());
        if (onRefreshed) onRefreshed(context);
        return context;
      })().finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  async function call(method, path, body) {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (expired) throw new Error("expired");
      const controller = new AbortController();
      const timeout = setTimeout(() => controller.abort(), 20000);  // a stuck call must not freeze the page
      let response;
      try {
        response = await fetch(path, {
          method,
          credentials: "omit",
          cache: "no-store",
          signal: controller.signal,
          headers: { Authorization: `Bearer ${jwt}`, ...(body ? { "Content-Type": "application/json" } : {}) },
          body: body ? JSON.stringify(body) : undefined,
        });
      } finally {
        clearTimeout(timeout);
      }
      if (response.status === 401 && attempt === 0) {
        await refresh();  // an expired JWT: refresh once and retry; a revoked family ends here
        continue;
      }
      if (response.status === 401) { expire("unauthorised"); throw new Error("expired"); }
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw Object.assign(new Error(data.message || "request failed"), { status: response.status });
      return data;
    }
    throw new Error("expired");
  }

  // a raw authenticated request (uploads, server-sent events read as a stream, ETag headers): the
  // Response itself, after the same refresh-once-on-401 as `call`
  async function raw(path, init = {}) {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (expired) throw new Error("expired");
      const response = await fetch(path, {
        ...init,
        credentials: "omit",
        cache: "no-store",
        headers: { ...(init.headers || {}), Authorization: `Bearer ${jwt}` },
      });
      if (response.status === 401 && attempt === 0) { await refresh(); continue; }
      if (response.status === 401) { expire("unauthorised"); throw new Error("expired"); }
      return response;
    }
    throw new Error("expired");
  }

  return {
    open,
    refresh,
    raw,
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body),
    put: (path, body) => call("PUT", path, body),
    get expired() { return expired; },
  };
}
