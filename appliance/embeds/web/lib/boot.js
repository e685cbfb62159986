// Shared start-up of every embed page: session, host channel, theme, language, expiry handling.
import { html, render } from "../vendor/index.js";
import { createSession } from "./session.js";
import { HostChannel } from "./host.js";
import { translator } from "./i18n.js";

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
  const showExpired = () => {
    render(html`<div class="expired" role="alert"><p>${t("expired")}</p></div>`, app);
  };
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
  } catch (err) {
    if (!session.expired) {
      host.post("session", "error", { message: String((err && err.message) || err).slice(0, 200) });
      render(html`<div class="expired" role="alert"><p>${String((err && err.message) || err)}</p></div>`, app);
    }
  }
}
