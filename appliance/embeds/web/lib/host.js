// iframe -> host events (coassemble-api.md §3.5): a JSON *string* {type, event, data}, posted with an
// explicit target origin, never "*".
//
// Which origin is the host? Our page is served with Referrer-Policy: no-referrer, but that governs
// what *we* send; the parent's origin is still known to the browser:
//   1. location.ancestorOrigins[0] (Chromium, WebKit) is the parent's origin;
//   2. otherwise document.referrer (set by the host's own referrer policy) gives it;
//   3. when the workspace configured allowed origins, the candidate must be one of them; if we can't
//      tell, we post to each allowed origin: the browser delivers only to the one that really is
//      the parent (frame-ancestors already guarantees the parent is in the list);
//   4. with no allowlist (test environment) and no candidate, nothing is posted.

export function hostTargets(allowed) {
  if (window.parent === window) return [];
  let candidate = null;
  try {
    const ancestors = window.location.ancestorOrigins;
    if (ancestors && ancestors.length && ancestors[0] !== "null") candidate = ancestors[0];
  } catch (_) { /* not supported */ }
  if (!candidate && document.referrer) {
    try { candidate = new URL(document.referrer).origin; } catch (_) { candidate = null; }
  }
  const list = Array.isArray(allowed) ? allowed : [];
  if (list.length) return candidate && list.includes(candidate) ? [candidate] : list.slice();
  return candidate ? [candidate] : [];
}

export class HostChannel {
  constructor(allowed) {
    this.targets = hostTargets(allowed);
    this.sent = [];
  }
  setAllowed(allowed) { this.targets = hostTargets(allowed); }
  post(type, event, data) {
    const message = JSON.stringify({ type, event, data: data || {} });
    this.sent.push(message);
    for (const origin of this.targets) {
      try { window.parent.postMessage(message, origin); } catch (_) { /* detached */ }
    }
  }
}
