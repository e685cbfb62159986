"""The vendored illustration library (appliance/images/tabler) and its deterministic ranking."""

from __future__ import annotations

from appliance.images.library import INDEX_FILE, load, terms_of


def test_the_vendored_index_is_the_outline_set_with_its_licence() -> None:
    library = load()
    assert len(library.icons) > 4000  # the whole outline set, less the "-off" variants
    assert not [i.name for i in library.icons if i.name.endswith("-off")]
    assert "MIT License" in (INDEX_FILE.parent / "LICENSE").read_text()
    assert INDEX_FILE.stat().st_size < 3 * 1024 * 1024  # the committed index stays small
    icon = library.icon("fire-extinguisher")
    assert icon is not None and "<path" in icon.drawing and 'd="M0 0h24v24H0z"' not in icon.drawing


def test_ranking_by_name_and_tags_is_deterministic() -> None:
    library = load()
    picked = [i.name for i in library.rank(["fire safety", "extinguisher"])]
    assert picked[0] == "fire-extinguisher"
    assert picked == [i.name for i in library.rank(["fire safety", "extinguisher"])]
    # a tag alone finds an icon ("money" is a tag of moneybag and pig-money)
    assert {i.name for i in library.rank(["money"], 5)} & {"moneybag", "pig-money", "cash"}
    # earlier keywords weigh more
    assert library.rank(["apple", "lock"], 1)[0].name == "apple"
    assert library.rank(["lock", "apple"], 1)[0].name == "lock"


def test_one_icon_per_stem_and_no_brand_logos() -> None:
    names = [i.name for i in load().rank(["lock", "security", "apple"], 3)]
    stems = [n.split("-")[0] for n in names]
    assert len(set(stems)) == len(stems)
    assert not [n for n in names if n.startswith("brand-")]
    assert not [i.name for i in load().rank(["apple", "logo", "company"], 10) if i.name.startswith("brand-")]


def test_interface_controls_glyphs_and_badge_variants_are_not_illustrations() -> None:
    library = load()
    # "exit" is a tag of the close cross and of log-out arrows: the door wins, the controls never show
    picked = [i.name for i in library.rank(["exits", "corridors", "clear"])]
    assert picked[0] == "door-exit"
    assert not [n for n in picked if n.split("-")[0] in ("x", "logout", "login")]
    # a glyph or a bare shape is no picture of the topic
    assert not [i for i in library.rank(["letter a", "number 1", "square", "arrow"], 10)
                if i.category in ("Letters", "Numbers", "Shapes", "Arrows")]


def test_unknown_words_match_nothing_and_terms_drop_stop_words() -> None:
    assert load().rank(["zzqxv", "qqqzz"]) == []
    assert terms_of("An introduction to the Basics of Budgets") == ["budget"]
