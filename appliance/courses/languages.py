"""Language tags: the one rule for what a language code looks like, wherever one comes in.

A tag is a 2-3 letter language, then subtags of 2-8 letters or digits joined by "-" (BCP 47:
`fr`, `pt-BR`, `zh-Hant-TW`). An embed's `language` option may also spell the joins "_" as POSIX
locales do (`pt_BR`): `SPELLINGS` matches both, `canonical` turns one into the other.

A translation target must also be a *known* language (`known_language`): the on-box model translates
into languages it has a name for, so a syntactically valid but unknown tag (`xx`, `qq-ZZ`) is refused
with 422 instead of producing a variant in no language.
"""

from __future__ import annotations

import re

from appliance.errors import Invalid

_LANGUAGE = "([A-Za-z]{2,3})"
_SUBTAGS = "(?:{join}[A-Za-z0-9]{{2,8}})*"
TAG = re.compile(f"^{_LANGUAGE}{_SUBTAGS.format(join='-')}$")
SPELLINGS = re.compile(f"^{_LANGUAGE}{_SUBTAGS.format(join='[-_]')}$")  # TAG, or joined by "_"

# ISO 639-1 (the two-letter codes), 184 languages
ISO_639_1 = frozenset("""
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz
ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik
io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml
mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd
se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi
vo wa wo xh yi yo za zh zu
""".split())


def known_language(tag: str) -> bool:
    """True for tags such as fr, pt-BR or zh-Hant-TW whose language is a known ISO 639-1 code."""
    match = TAG.match(tag)
    return match is not None and match.group(1).lower() in ISO_639_1


def canonical(value: str) -> str | None:
    """`value` as a BCP 47 tag (`pt_BR` -> `pt-BR`), or None when it is not a language tag."""
    tag = value.replace("_", "-")
    return tag if TAG.match(tag) else None


def require_known_language(tag: str) -> str:
    """``tag`` when it names a known language; otherwise the 422 every translate route answers."""
    if not known_language(tag):
        raise Invalid("language must be a BCP 47 code of a known language (ISO 639-1), such as fr or pt-BR")
    return tag
