"""An image an author uploads (or the appliance composes), checked and cleaned before it is stored or
served: the one rule for images (docs/images.md "Uploaded images").

* The type comes from the bytes, never from a name or a Content-Type: PNG, JPEG, GIF, WebP or SVG.
* Raster images are walked chunk by chunk, never decoded: the size in the header is checked against
  `MAX_PIXELS`/`MAX_SIDE` (a 30,000 x 30,000 PNG is refused from its first chunk, so no decode bomb
  reaches a decoder here; the learner's browser decodes only what passed), a damaged or unknown
  structure is refused, data after a PNG/GIF/WebP's end (a zip appended to a "PNG") is refused, and
  metadata (EXIF, XMP, text chunks, comments) is dropped by rewriting the file without those chunks.
  A JPEG's bytes after its end-of-image marker (another picture of a phone's multi-picture file, or
  anything appended) are dropped. EXIF's orientation goes with the rest of EXIF.
* SVG is parsed by defusedxml (no DOCTYPE, no entities: billion laughs), at most `MAX_SVG_ELEMENTS`
  elements nested at most `MAX_SVG_DEPTH` deep, and refused when it has a script, an event handler
  attribute, a `foreignObject`, animation, or a reference outside itself (`href`/`xlink:href` other
  than `#fragment` or a raster `data:image/...;base64`, CSS `url()` other than `url(#...)`,
  `@import`). Editor metadata (other namespaces, `<metadata>`) and comments are dropped; what is
  stored is the document as re-serialised from the parsed tree.

Refusals are `TooLarge` (413), `Unsupported` (415) or `Invalid` (422) from appliance.errors; nothing
is stored by a caller before `clean_image` returned.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from appliance.errors import Invalid, TooLarge, Unsupported

MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_SVG_BYTES = 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 16_384
MAX_GIF_FRAMES = 500
MAX_SVG_ELEMENTS = 10_000
MAX_SVG_DEPTH = 64

IMAGE_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
}
ACCEPTED = "Upload a PNG, JPEG, GIF, WebP or SVG image"

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
QUOTED = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    extension: str
    media_type: str
    width: int | None  # None for SVG (vector)
    height: int | None


def sniff_image(data: bytes) -> str | None:
    """The extension of an image from its first bytes (SVG: markup that starts like XML or <svg)."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    text = data[:256].lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith((b"<?xml", b"<svg", b"<!--", b"<!DOCTYPE svg", b"<!doctype svg")):
        return "svg"
    return None


def clean_image(data: bytes) -> CleanImage:
    """The image to store: its type sniffed, its limits checked, its metadata dropped."""
    if not data:
        raise Invalid("The upload is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise TooLarge(f"Images are limited to {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    ext = sniff_image(data)
    if ext is None:
        raise Unsupported(ACCEPTED)
    if ext == "svg":
        return CleanImage(sanitise_svg(data), "svg", IMAGE_TYPES["svg"], None, None)
    cleaned, width, height = {"png": _png, "jpg": _jpeg, "gif": _gif, "webp": _webp}[ext](data)
    return CleanImage(cleaned, ext, IMAGE_TYPES[ext], width, height)


def _check_size(kind: str, width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise Invalid(f"The {kind} image has no size")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise TooLarge(
            f"The {kind} image is {width} x {height} pixels; images are limited to "
            f"{MAX_PIXELS // 1_000_000} megapixels and {MAX_SIDE} pixels a side"
        )


def _need(data: bytes, end: int, kind: str) -> None:
    if end > len(data):
        raise Invalid(f"The {kind} image is truncated")


# -- PNG: chunks with CRCs; critical chunks and the ancillary ones that change how it looks are kept
PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
            b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT"}


def _png(data: bytes) -> tuple[bytes, int, int]:
    out = [data[:8]]
    pos, width, height, ended = 8, 0, 0, False
    while pos < len(data) and not ended:
        _need(data, pos + 12, "PNG")
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        _need(data, end, "PNG")
        body = data[pos + 8:pos + 8 + length]
        if zlib.crc32(kind + body) != int.from_bytes(data[end - 4:end], "big"):
            raise Invalid("The PNG image is damaged (a chunk's checksum does not match)")
        if pos == 8:
            if kind != b"IHDR" or length != 13:
                raise Invalid("The PNG image has no header chunk")
            width, height = struct.unpack(">II", body[:8])
            _check_size("PNG", width, height)
        if kind in PNG_KEEP:
            out.append(data[pos:end])
        elif kind[0] & 0x20 == 0:  # an unknown critical chunk: a decoder would refuse it too
            raise Invalid(f"The PNG image has an unknown chunk {kind.decode('latin-1')!r}")
        ended = kind == b"IEND"
        pos = end
    if not ended:
        raise Invalid("The PNG image is truncated (no end chunk)")
    if pos != len(data):
        raise Invalid("The PNG image has data after its end (another file appended to it)")
    return b"".join(out), width, height


# -- JPEG: segments up to each scan, the scan's entropy-coded data, to the end-of-image marker
SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_keeps(marker: int, segment: bytes) -> bool:
    """APP0 (JFIF), APP2 ICC profile and APP14 (Adobe colour transform) change how it looks; EXIF,
    XMP, IPTC, the multi-picture index and comments do not."""
    if marker == 0xFE or 0xE1 <= marker <= 0xEF:
        if marker == 0xE2:
            return segment[4:16] == b"ICC_PROFILE\x00"
        return marker == 0xEE and segment[4:9] == b"Adobe"
    return True


def _jpeg(data: bytes) -> tuple[bytes, int, int]:
    out = [data[:2]]
    pos, width, height = 2, 0, 0
    while True:
        _need(data, pos + 2, "JPEG")
        if data[pos] != 0xFF:
            raise Invalid("The JPEG image is damaged (a segment does not start with a marker)")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            out.append(data[pos:pos + 2])
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out.append(data[pos:pos + 2])
            pos += 2
            continue
        _need(data, pos + 4, "JPEG")
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        _need(data, end, "JPEG")
        segment = data[pos:end]
        if marker in SOF_MARKERS:
            if len(segment) < 9:
                raise Invalid("The JPEG image's frame header is damaged")
            height, width = struct.unpack(">HH", segment[5:9])
            _check_size("JPEG", width, height)
        if _jpeg_keeps(marker, segment):
            out.append(segment)
        pos = end
        if marker == 0xDA:
            if not width:
                raise Invalid("The JPEG image has a scan before its frame header")
            scan = pos
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= len(data):
                    raise Invalid("The JPEG image is truncated")
                following = data[pos + 1]
                if following == 0 or 0xD0 <= following <= 0xD7:
                    pos += 2
                    continue
                break
            out.append(data[scan:pos])
    if not width:
        raise Invalid("The JPEG image has no frame")
    return b"".join(out), width, height


# -- GIF: blocks; comment and application extensions other than the looping one are dropped
GIF_LOOP = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


def _sub_blocks(data: bytes, pos: int) -> int:
    while True:
        _need(data, pos + 1, "GIF")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def _gif(data: bytes) -> tuple[bytes, int, int]:
    _need(data, 13, "GIF")
    width, height = struct.unpack("<HH", data[6:10])
    _check_size("GIF", width, height)
    flags = data[10]
    pos = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    _need(data, pos, "GIF")
    out, frames = [data[:pos]], 0
    while True:
        _need(data, pos + 1, "GIF")
        block = data[pos]
        if block == 0x3B:
            out.append(b"\x3b")
            pos += 1
            break
        if block == 0x2C:
            _need(data, pos + 11, "GIF")
            fx, fy, fw, fh = struct.unpack("<HHHH", data[pos + 1:pos + 9])
            if fx + fw > width or fy + fh > height:
                raise Invalid("The GIF image has a frame outside its canvas")
            frames += 1
            if frames > MAX_GIF_FRAMES:
                raise TooLarge(f"GIF images are limited to {MAX_GIF_FRAMES} frames")
            local = data[pos + 9]
            start = pos
            pos += 10 + (3 * (2 << (local & 7)) if local & 0x80 else 0) + 1  # + LZW code size
            pos = _sub_blocks(data, pos)
            out.append(data[start:pos])
        elif block == 0x21:
            _need(data, pos + 2, "GIF")
            label, start = data[pos + 1], pos
            pos = _sub_blocks(data, pos + 2)
            keep = label in (0xF9, 0x01) or (label == 0xFF and data[start + 3:start + 14] in GIF_LOOP)
            if keep:
                out.append(data[start:pos])
        else:
            raise Invalid("The GIF image is damaged (an unknown block)")
    if pos != len(data):
        raise Invalid("The GIF image has data after its end (another file appended to it)")
    return b"".join(out), width, height


# -- WebP: RIFF chunks; EXIF and XMP dropped (and their flags cleared in the extended header)
WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}


def _webp(data: bytes) -> tuple[bytes, int, int]:
    _need(data, 12, "WebP")
    declared = int.from_bytes(data[4:8], "little") + 8
    _need(data, declared, "WebP")
    if declared != len(data):
        raise Invalid("The WebP image has data after its end (another file appended to it)")
    chunks: list[bytes] = []
    pos, width, height = 12, 0, 0
    while pos < len(data):
        _need(data, pos + 8, "WebP")
        kind = data[pos:pos + 4]
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        end = pos + 8 + size + (size & 1)
        _need(data, end, "WebP")
        body = data[pos + 8:pos + 8 + size]
        if kind == b"VP8X" and size >= 10:
            width = 1 + int.from_bytes(body[4:7], "little")
            height = 1 + int.from_bytes(body[7:10], "little")
            body = bytes([body[0] & ~0x0C]) + body[1:]  # no EXIF (0x08), no XMP (0x04)
            chunks.append(kind + data[pos + 4:pos + 8] + body + data[pos + 8 + size:end])
        elif kind in WEBP_KEEP:
            if not width and kind == b"VP8 " and size >= 10 and body[3:6] == b"\x9d\x01\x2a":
                width, height = (v & 0x3FFF for v in struct.unpack("<HH", body[6:10]))
            elif not width and kind == b"VP8L" and size >= 5 and body[0] == 0x2F:
                bits = int.from_bytes(body[1:5], "little")
                width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            chunks.append(data[pos:end])
        pos = end
    _check_size("WebP", width, height)
    payload = b"WEBP" + b"".join(chunks)
    return b"RIFF" + len(payload).to_bytes(4, "little") + payload, width, height


# -- SVG
SVG_ELEMENTS = {
    "svg", "g", "defs", "symbol", "use", "title", "desc", "path", "rect", "circle", "ellipse", "line",
    "polyline", "polygon", "text", "tspan", "textPath", "linearGradient", "radialGradient", "stop",
    "pattern", "clipPath", "mask", "marker", "image", "switch", "style", "a", "view",
    "filter", "feBlend", "feColorMatrix", "feComponentTransfer", "feComposite", "feConvolveMatrix",
    "feDiffuseLighting", "feDisplacementMap", "feDistantLight", "feDropShadow", "feFlood", "feFuncA",
    "feFuncB", "feFuncG", "feFuncR", "feGaussianBlur", "feImage", "feMerge", "feMergeNode",
    "feMorphology", "feOffset", "fePointLight", "feSpecularLighting", "feSpotLight", "feTile",
    "feTurbulence",
}
SVG_DROPPED = {"metadata"}
SAFE_DATA = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$")
CSS_URL = re.compile(r"url\s*\(\s*['\"]?\s*([^'\")\s]*)", re.IGNORECASE)


class _Bounded(ElementTree.TreeBuilder):
    """A tree builder that stops the parse at the element or depth limit (a 50,000-element SVG
    never becomes a tree)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.depth = 0

    def start(self, tag: Any, attrs: Any) -> ElementTree.Element:
        self.count += 1
        self.depth += 1
        if self.count > MAX_SVG_ELEMENTS:
            raise TooLarge(f"SVG images are limited to {MAX_SVG_ELEMENTS} elements")
        if self.depth > MAX_SVG_DEPTH:
            raise Invalid(f"SVG images are limited to {MAX_SVG_DEPTH} levels of nesting")
        return super().start(tag, attrs)

    def end(self, tag: Any) -> ElementTree.Element:
        self.depth -= 1
        return super().end(tag)


def _split(name: str) -> tuple[str, str]:
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return ns, local
    return "", name


def _check_css(text: str, where: str) -> None:
    lowered = text.lower()
    if "@import" in lowered or "javascript:" in lowered or "expression(" in lowered:
        raise Invalid(f"The SVG image's {where} loads or runs something (@import, javascript:, expression())")
    for target in CSS_URL.findall(text):
        if not target.startswith("#"):
            raise Invalid(f"The SVG image's {where} refers to something outside it (url({target[:60]}))")


def _check_href(value: str) -> None:
    value = value.strip()
    if value.startswith("#") or SAFE_DATA.match(value):
        return
    raise Invalid(f"The SVG image refers to something outside it ({value[:60]!r}): only #fragments and embedded images")


def _clean_element(element: ElementTree.Element) -> None:
    for child in list(element):
        ns, local = _split(str(child.tag))
        if ns != SVG_NS or local in SVG_DROPPED:
            element.remove(child)  # editor metadata (Inkscape, RDF) or another namespace's markup
            continue
        if local == "script":
            raise Invalid("The SVG image has a script")
        if local == "foreignObject":
            raise Invalid("The SVG image has a foreignObject (HTML inside an SVG)")
        if local not in SVG_ELEMENTS:
            raise Invalid(f"The SVG image has a <{local}> element, which images here may not have")
        _clean_attributes(child)
        if local == "style":
            _check_css("".join(child.itertext()), "style sheet")
        _clean_element(child)


def _clean_attributes(element: ElementTree.Element) -> None:
    for name, value in list(element.attrib.items()):
        ns, local = _split(name)
        if ns not in ("", XLINK_NS, XML_NS):
            del element.attrib[name]  # another namespace's attribute (editor data)
            continue
        if local.lower().startswith("on"):
            raise Invalid(f"The SVG image has an event handler attribute ({local})")
        if local == "href":
            _check_href(value)
        elif ns == XLINK_NS:
            del element.attrib[name]  # xlink:title, xlink:show…: nothing an image needs
        elif local == "style":
            _check_css(value, "style attribute")
        elif "url(" in value.lower() or "javascript:" in value.lower():
            _check_css(value, f"{local} attribute")


def sanitise_svg(data: bytes) -> bytes:
    """The SVG as stored and served, or a refusal (see the module's docstring)."""
    if len(data) > MAX_SVG_BYTES:
        raise TooLarge(f"SVG images are limited to {MAX_SVG_BYTES // 1024} KB")
    builder = _Bounded()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException:
        raise Invalid("The SVG image has a DOCTYPE or entities, which images here may not have") from None
    except ElementTree.ParseError as exc:
        raise Invalid(f"The SVG image is not well-formed XML ({exc})") from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise Invalid("The file is not an SVG image (its root is not <svg> in the SVG namespace)")
    _clean_attributes(root)
    _clean_element(root)
    out: list[str] = []
    _write(root, out, top=True)
    return "".join(out).encode("utf-8")


PREFIXES = {"": "", XLINK_NS: "xlink:", XML_NS: "xml:"}


def _write(element: ElementTree.Element, out: list[str], top: bool = False) -> None:
    """Serialise a checked tree: SVG elements only, attributes without namespace or in xlink/xml."""
    local = _split(str(element.tag))[1]
    out.append(f"<{local}")
    if top:
        out.append(f' xmlns="{SVG_NS}"')
        if any(_split(k)[0] == XLINK_NS for e in element.iter() for k in e.attrib):
            out.append(f' xmlns:xlink="{XLINK_NS}"')
    for name, value in element.attrib.items():
        ns, attr = _split(name)
        out.append(f' {PREFIXES[ns]}{attr}="{escape(value, QUOTED)}"')
    out.append(">")
    if element.text:
        out.append(escape(element.text))
    for child in element:
        _write(child, out)
        if child.tail:
            out.append(escape(child.tail))
    out.append(f"</{local}>")
