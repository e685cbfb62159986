// Shared start-up of every embed page: session, host channel, theme, language, expiry handling.
import { html, render } from "../vendor/index.js";
import { createSession } from "./session.js";
import { HostChannel } from "./host.js";
import { translator } from "./i18n.js";
import { icon } from "../vendor/icons/index.js";

// A full-page message (session ended, an error): a landmark, one h1, the text in an alert.
export function Notice({ title, text }) {
  return html`<main class="notice" aria-labelledby="notice-title">
    ${icon("alert-circle", { className: "cover-icon" })}
    <h1 id="notice-title" tabindex="-1">${title}</h1>
    <p role="alert">${text}</p>
  </main>`;
}

// The page's "Loading…" status (server-rendered into #app) leaves the page and the accessibility
// tree once the view is drawn: preact renders beside it, it does not replace it.
function dropLoading(app) {
  for (const node of app.querySelectorAll(":scope > .loading")) node.remove();
}

// WCAG relative luminance of #rgb / #rrggbb (alpha ignored)
function luminance(hex) {
  let h = hex.slice(1);
  if (h.length <= 4) h = [...h.slice(0, 3)].map((c) => c + c).join("");
  const channel = (i) => {
    const v = parseInt(h.slice(i, i + 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
}
const contrast = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((m, n) => n - m); return (x + 0.05) / (y + 0.05); };

export function applyTheme(theme, options) {
  const root = document.documentElement.style;
  const palette = (theme && theme.colours && theme.colours.standard) || {};
  const primary = (options && options.color) || palette.primary;
  const hex = /^#[0-9a-fA-F]{3,8}$/;
  if (primary && hex.test(primary)) root.setProperty("--primary", primary);
  if (palette.headings && hex.test(palette.headings)) root.setProperty("--headings", palette.headings);
  if (palette.background && hex.test(palette.background)) root.setProperty("--background", palette.background);
  // a partner's light primary (options.color "#C4BCFC") must not give white-on-lavender buttons or
  // lavender text: the text on primary is white or dark, whichever reads better, and primary-coloured
  // text on the page falls back to the headings colour below 4.5:1 (WCAG 1.4.3)
  const style = getComputedStyle(document.documentElement);
  const read = (name) => style.getPropertyValue(name).trim();
  const [p, bg, ink] = [read("--primary"), read("--background"), read("--headings")];
  if ([p, bg, ink].every((c) => /^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(c))) {
    root.setProperty("--on-primary", contrast(p, "#ffffff") >= contrast(p, "#1d1b2c") ? "#ffffff" : "#1d1b2c");
    root.setProperty("--primary-ink", contrast(p, bg) >= 4.5 ? p : ink);
  }
  if (theme && theme.font) root.setProperty("--font", `${String(theme.font).replace(/[^\w \-]/g, "")}, system-ui, sans-serif`);
}

export async function boot(kind, mount) {
  const app = document.getElementById("app");
  const host = new HostChannel([]);
  let t = translator("en");
  const showNotice = (title, text) => {
    const hadFocus = document.activeElement && document.activeElement !== document.body;
    dropLoading(app);
    render(html`<${Notice} title=${title} text=${text} />`, app);
    // the control the learner was using is gone: focus the notice's heading, not <body>
    if (hadFocus) document.getElementById("notice-title").focus();
  };
  const showExpired = () => showNotice(t("expiredTitle"), t("expired"));
  const session = createSession({
    kind,
    onExpired: () => {
      host.post("session", "expired", {});
      showExpired();
    },
  });
  window.__embed = { get expired() { return session.expired; }, sent: host.sent };  // for tests: no secrets
  let context;
  try {
    context = await session.open();
  } catch (_) {
    showExpired();
    return;
  }
  host.setAllowed(context.hostOrigins);
  if (context.testMode) document.body.classList.add("is-test");
  try {
    await mount({ app, session, context, host, setLanguage: (l) => { t = translator(l); document.documentElement.lang = t.language; return t; } });
    dropLoading(app);
  } catch (err) {
    if (!session.expired) {
      host.post("session", "error", { message: String((err && err.message) || err).slice(0, 200) });
      showNotice(t("errorTitle"), String((err && err.message) || err));
    }
  }
}
