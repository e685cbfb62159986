"""axe-core in real Chromium, for the embed accessibility tests (player, analytics, collection,
refused page, sandbox, builder).

axe-core is an npm package used by the tests only: `make axe-deps` (a dependency of `make test`)
installs the pinned version into `.cache/test-node/`; nothing is fetched at run time. The embed
pages send `script-src 'self'` (appliance/embeds/origins.py), which refuses an injected inline
<script>, so the library is evaluated through the DevTools protocol instead (not subject to the
page's CSP) and the page's policy stays exactly what learners get.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).resolve().parents[2] / ".cache" / "test-node" / "node_modules" / "axe-core" / "axe.min.js"

# WCAG 2.0/2.1 A and AA (what issue 17 promises) plus axe's best practices (landmarks, headings)
_RUN = """async (tags) => {
  const result = await window.axe.run(document, { runOnly: { type: "tag", values: tags }, iframes: false });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({ target: n.target, summary: n.failureSummary, html: n.html.slice(0, 300) })),
  }));
}"""
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@cache
def _source() -> str:
    if not AXE_JS.is_file():
        raise RuntimeError(f"axe-core is not installed at {AXE_JS}: run `make axe-deps`")
    return AXE_JS.read_text(encoding="utf-8")


def axe_violations(page: Any, *, impacts: tuple[str, ...] = ("critical", "serious")) -> list[dict[str, Any]]:
    """axe's violations on `page` (a Playwright Page or Frame: pass the embed's Frame to check the
    embed itself, since axe does not reach into a cross-origin iframe here) whose impact is in
    `impacts`. Each: {id, impact, help, nodes: [{target, summary, html}]}."""
    if not page.evaluate("() => Boolean(window.axe)"):
        page.evaluate(_source() + "\n;undefined")
    found: list[dict[str, Any]] = page.evaluate(_RUN, TAGS)
    return [v for v in found if v["impact"] in impacts]


def embed_frame(page: Any, origin: str) -> Any:
    """The embed's Frame inside a host page (the first frame served from `origin`)."""
    return next(f for f in page.frames if f.url.startswith(origin))
