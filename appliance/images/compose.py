"""An illustration composed from library icons: an SVG in the theme's colours, one main icon (and up
to two smaller ones) on a shaped background. Deterministic: the same icons, theme, title and alt
text give the same bytes. The SVG has a <title> (the alt text), no script, no external reference,
no style sheet: only shapes and the icons' own path data, which comes from the vendored library,
never from the model or the author."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal
from xml.sax.saxutils import escape

from appliance.images.library import Icon

WIDTH, HEIGHT = 800, 450
HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
DEFAULTS = {"primary": "#3b5bdb", "headings": "#1f2937", "background": "#f8fafc"}
SHAPES = ("circle", "squircle", "blob")
# a blob: four cubic curves around (0, 0), radius about 1; scaled into place
BLOB = ("M 0 -1 C 0.6 -1.05 1.05 -0.55 1 0.05 C 0.95 0.65 0.5 1.02 -0.05 1 "
        "C -0.6 0.98 -1.02 0.6 -0.98 0 C -0.95 -0.55 -0.55 -0.98 0 -1 Z")


def palette(theme: dict[str, Any] | None, purpose: Literal["screen", "cover"]) -> dict[str, str]:
    """The theme's colours for this purpose (the cover palette for covers), each a plain hex colour;
    anything else (a missing colour, a pattern, a value that is no hex colour) takes the default."""
    colours = (theme or {}).get("colours") or {}
    chosen = dict(DEFAULTS)
    for name in ("standard", "cover") if purpose == "cover" else ("standard",):
        part = colours.get(name) if isinstance(colours, dict) else None
        for key in DEFAULTS:
            value = part.get(key) if isinstance(part, dict) else None
            if isinstance(value, str) and HEX.match(value):
                chosen[key] = value
    return chosen


def _tint(colour: str, amount: float) -> str:
    """`colour` mixed with white (amount 0: the colour, 1: white): the shape behind the icon."""
    digits = colour[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) for i in (0, 2, 4)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in channels)


def _icon(icon: Icon, x: float, y: float, size: float, colour: str, width: float) -> str:
    scale = size / 24
    return (f'<g transform="translate({x:.1f} {y:.1f}) scale({scale:.3f})" fill="none" stroke="{colour}" '
            f'stroke-width="{width}" stroke-linecap="round" stroke-linejoin="round">{icon.drawing}</g>')


def compose(icons: list[Icon], *, alt: str, title: str, theme: dict[str, Any] | None,
            purpose: Literal["screen", "cover"]) -> bytes:
    """The SVG (UTF-8 bytes). ``icons``: the main icon first, at most three are drawn."""
    if not icons:
        raise ValueError("an illustration needs at least one icon")
    colours = palette(theme, purpose)
    seed = hashlib.sha256("\n".join([title, *(i.name for i in icons)]).encode()).digest()
    shape = SHAPES[seed[0] % len(SHAPES)]
    cx, cy = WIDTH / 2, HEIGHT / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img">',
        f"<title>{escape(alt)}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="{colours["background"]}"/>',
    ]
    soft = _tint(colours["primary"], 0.82)
    if shape == "circle":
        parts.append(f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="160" fill="{soft}"/>')
    elif shape == "squircle":
        parts.append(f'<rect x="{cx - 160:.0f}" y="{cy - 160:.0f}" width="320" height="320" rx="96" fill="{soft}"/>')
    else:
        turn = seed[1] % 360
        parts.append(f'<path d="{BLOB}" fill="{soft}" transform="translate({cx:.0f} {cy:.0f}) rotate({turn}) '
                     f'scale(170)"/>')
    # small accents at the corners: two dots whose places follow the seed
    for k, (ax, ay) in enumerate(((120, 90), (WIDTH - 120, HEIGHT - 90))):
        r = 10 + seed[2 + k] % 14
        parts.append(f'<circle cx="{ax}" cy="{ay}" r="{r}" fill="{_tint(colours["headings"], 0.7)}"/>')
    main = 180
    parts.append(_icon(icons[0], cx - main / 2, cy - main / 2, main, colours["primary"], 1.5))
    side = 96
    for icon, x in zip(icons[1:3], (cx - 300, cx + 300 - side), strict=False):
        parts.append(_icon(icon, x, cy - side / 2, side, colours["headings"], 1.75))
    parts.append("</svg>")
    return "\n".join(parts).encode("utf-8")
