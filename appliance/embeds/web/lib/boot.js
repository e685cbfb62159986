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

export function applyTheme(theme, options) {
  const root = document.documentElement.style;
  const palette = (theme && theme.colours && theme.colours.standard) || {};
  const primary = (options && options.color) || palette.primary;
  const hex = /^#[0-9a-fA-F]{3,8}$/;
  if (primary && hex.test(primary)) root.setProperty("--primary", primary);
  if (palette.headings && hex.test(palette.headings)) root.setProperty("--headings", palette.headings);
  if (palette.background && hex.test(palette.background)) root.setProperty("--background", palette.background);
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
