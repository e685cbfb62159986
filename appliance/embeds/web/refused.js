// The page shown for an invalid or expired link: a generic message, no detail. Reloading cannot
// help (the link itself is refused), so the server's message says who can give a new one: the
// site that showed it (routes.py LINK_REFUSED).
import { html, render } from "./vendor/index.js";
import { Notice } from "./lib/boot.js";

const app = document.getElementById("app");
app.replaceChildren();  // the page's "Loading…" status
render(html`<${Notice} title="This link can't be opened"
  text=${document.body.dataset.message || "This link is invalid or has expired: ask the site that showed you this course for a new link"} />`, app);
