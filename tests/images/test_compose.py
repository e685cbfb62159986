"""The composed illustration: deterministic, themed, titled with its alt text, and accepted by the
upload rule every stored image passes (appliance.images.uploads)."""

from __future__ import annotations

import re

from appliance.images.compose import compose, palette
from appliance.images.keywords import choose, icon_alt
from appliance.images.library import load
from appliance.images.uploads import clean_image, sanitise_svg

THEME = {"colours": {"standard": {"primary": "#c92a2a", "headings": "#0b7285", "background": "#fff9db"},
                     "cover": {"primary": "#5f3dc4"}}}


def _svg(title: str, keywords: list[str], theme: dict | None = THEME, purpose: str = "screen") -> bytes:  # type: ignore[type-arg]
    choice = choose(load(), title, "", keywords)
    return compose(choice.icons, alt=choice.alt, title=title, theme=theme, purpose=purpose)  # type: ignore[arg-type]


def test_the_same_input_gives_the_same_bytes_and_another_title_another_picture() -> None:
    first = _svg("Fire safety at work", ["fire extinguisher", "alarm"])
    assert first == _svg("Fire safety at work", ["fire extinguisher", "alarm"])
    assert first != _svg("Healthy eating", ["apple", "carrot"])


def test_theme_colours_title_and_nothing_external() -> None:
    svg = _svg("Fire safety at work", ["fire extinguisher"]).decode()
    assert 'stroke="#c92a2a"' in svg and 'fill="#fff9db"' in svg and 'stroke="#0b7285"' in svg
    assert re.search(r"<title>Illustration of fire extinguisher.*Fire safety at work.*</title>", svg)
    assert "<script" not in svg and "href" not in svg and "url(" not in svg and "<style" not in svg
    cover = _svg("Fire safety at work", ["fire extinguisher"], purpose="cover").decode()
    assert 'stroke="#5f3dc4"' in cover  # the cover palette for covers


def test_hostile_theme_values_and_titles_cannot_inject_markup() -> None:
    theme = {"colours": {"standard": {"primary": '#fff" onload="alert(1)', "background": "url(http://x/y)"}}}
    assert palette(theme, "screen")["primary"] == "#3b5bdb"  # not a hex colour: the default
    svg = _svg('</title><script>alert(1)</script>', ["lock"], theme)
    assert b"<script" not in svg and b"onload" not in svg and b"http://x" not in svg
    assert sanitise_svg(svg)  # and the upload rule accepts it


def test_every_composed_svg_passes_the_upload_rule() -> None:
    for title, words in [("Fire safety", ["fire", "alarm"]), ("Budgets", ["money", "chart"]),
                         ("Teamwork", ["people", "handshake"]), ("", [])]:
        svg = _svg(title, words)
        clean = clean_image(svg)
        assert clean.extension == "svg" and clean.media_type == "image/svg+xml"
        assert b"<title>" in clean.data


def test_alt_text_names_the_icons_shown() -> None:
    icons = load().rank(["fire extinguisher", "smoke alarm"], 2)
    assert icon_alt("Fire safety", icons) == f"Illustration of {icons[0].name.replace('-', ' ')} and " \
        f"{icons[1].name.replace('-', ' ')}, for “Fire safety”"
