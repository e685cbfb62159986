"""Uploaded images (appliance/images/uploads.py, docs/images.md "Uploaded images"): every bad input
of issue 15 that concerns uploads is refused with a clear 4xx and nothing stored, and metadata is
gone from what is stored (read back over HTTP). The images are tiny ones Chromium's encoders made
(an 8 x 6 gradient), embedded here; the bad ones are built from them. The same inputs through the
builder's upload route over HTTP (refused, nothing stored; clean ones read back without their
metadata): tests/embeds/test_builder_images.py, which shares its server with the builder test."""

from __future__ import annotations

import base64
import io
import struct
import zipfile
import zlib

import pytest

from appliance.errors import DomainError, Invalid, TooLarge, Unsupported
from appliance.images import uploads

JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAA"
    "AABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAA"
    "ABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAAADxtbHVjAAAAAAAA"
    "AAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAA"
    "AAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAA"
    "AABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADb/2wBDAAYEBQYF"
    "BAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMK"
    "ChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAAGAAgDASIAAhEB"
    "AxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAf/xAAWEAEBAQAAAAAAAAAAAAAAAAAABUL/xAAVAQEBAAAAAAAAAAAAAAAAAAAF"
    "B//EABcRAAMBAAAAAAAAAAAAAAAAAAACBjX/2gAMAwEAAhEDEQA/AI3b0ArcbmIMVeix/9k="
)
WEBP = base64.b64decode(
    "UklGRjICAABXRUJQVlA4WAoAAAAgAAAABwAABQAASUNDUMgBAAAAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAA"
    "AABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAA"
    "ABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAAADxtbHVjAAAAAAAA"
    "AAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAA"
    "AAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAA"
    "AABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADZWUDggRAAAAHAC"
    "AJ0BKggABgABQCYlqAJ0twCjAVf+B6IBX4AA/vn+R1G2bcf/mi/injX/ybL0L8U8a/8my/+lh9vJn/4sPt5O9AAA"
)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAGCAYAAAD+Bd/7AAAAaUlEQVR4ATSNARGAUAhDHxbQKDbRJtpEm2gTo2iDOfjKHWxj"
    "O+huel2MOpi0s2ph08ypkUsDjzoIssIok3CLZCZGB7CFqT5MHdZUVUBFcymH2o2cuXZAiW6V2c7/duBAE2Fb4NneUSVeAAAA"
    "//+mJNwYAAAABklEQVQDAK/rI/17eKS8AAAAAElFTkSuQmCC"
)
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
SECRET = b"GPS 51.5074N 0.1278W camera serial 0042"
SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_sized(width: int, height: int) -> bytes:
    """A PNG whose header says width x height over a few bytes of pixel data (never decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def png_with_text() -> bytes:
    """The PNG with an eXIf and a tEXt chunk after its header."""
    return PNG[:33] + chunk(b"eXIf", b"MM\0*" + SECRET) + chunk(b"tEXt", b"Comment\0" + SECRET) + PNG[33:]


def jpeg_with_exif() -> bytes:
    app1 = b"Exif\0\0" + SECRET
    xmp = b"http://ns.adobe.com/xap/1.0/\0" + SECRET
    return (JPEG[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
            + b"\xff\xe1" + struct.pack(">H", len(xmp) + 2) + xmp + b"\xff\xfe" + struct.pack(">H", len(SECRET) + 2) + SECRET
            + JPEG[2:])


def webp_with_exif() -> bytes:
    body = WEBP[12:]
    assert body[:4] == b"VP8X"
    flags = bytes([body[8] | 0x08 | 0x04])
    exif = SECRET + (b"\0" if len(SECRET) % 2 else b"")
    chunks = body[:8] + flags + body[9:] + b"EXIF" + struct.pack("<I", len(SECRET)) + exif + b"XMP " + struct.pack("<I", len(exif)) + exif
    return b"RIFF" + struct.pack("<I", len(chunks) + 4) + b"WEBP" + chunks


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("payload.html", "<script>alert(1)</script>")
    return out.getvalue()


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";" if i > 1 else "&lol;") * 10}">' for i in range(1, 10))
    + f']><svg {SVG_NS}><text>&lol9;</text></svg>'
).encode()

# each bad upload, the status it gets and words of its message
BAD: dict[str, tuple[bytes, int, str]] = {
    "svg-script": (f'<svg {SVG_NS}><script>alert(document.cookie)</script></svg>'.encode(), 422, "has a script"),
    "svg-onload": (f'<svg {SVG_NS} onload="alert(1)"><rect width="1" height="1"/></svg>'.encode(), 422, "event handler"),
    "svg-external-href": (f'<svg {SVG_NS}><image href="https://tracker.example/p.png" width="1" height="1"/></svg>'.encode(),
                          422, "refers to something outside it"),
    "svg-external-xlink": (f'<svg {SVG_NS} xmlns:xlink="http://www.w3.org/1999/xlink"><use xlink:href="http://x.example/a.svg#i"/></svg>'.encode(),
                           422, "refers to something outside it"),
    "svg-javascript-href": (f'<svg {SVG_NS}><a href="javascript:alert(1)"><rect width="1" height="1"/></a></svg>'.encode(),
                            422, "refers to something outside it"),
    "svg-css-url": (f'<svg {SVG_NS}><style>rect {{ fill: url(https://x.example/f.svg#p) }}</style></svg>'.encode(), 422, "url("),
    "svg-css-import": (f'<svg {SVG_NS}><style>@import "https://x.example/a.css";</style></svg>'.encode(), 422, "@import"),
    "svg-foreign-object": (f'<svg {SVG_NS}><foreignObject><p xmlns="http://www.w3.org/1999/xhtml">x</p></foreignObject></svg>'.encode(),
                           422, "foreignObject"),
    "svg-billion-laughs": (BILLION_LAUGHS, 422, "DOCTYPE or entities"),
    "svg-external-entity": (f'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg {SVG_NS}>&x;</svg>'.encode(), 422, "DOCTYPE"),
    "svg-element-bomb": (f"<svg {SVG_NS}>".encode() + b"<g/>" * 50_000 + b"</svg>", 413, "10000 elements"),
    "svg-not-svg": (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>x</body></html>', 422, "not an SVG image"),
    "zip-as-png": (zip_bytes(), 415, "Upload a PNG, JPEG"),
    "png-then-zip": (PNG + zip_bytes(), 422, "data after its end"),
    "png-30000": (png_sized(30_000, 30_000), 413, "30000 x 30000 pixels"),
    "png-damaged": (PNG[:40] + bytes([PNG[40] ^ 0xFF]) + PNG[41:], 422, "checksum"),
    "png-truncated": (PNG[:-12], 422, "truncated"),
    "jpeg-huge": (JPEG.replace(b"\xff\xc0\x00\x11\x08\x00\x06\x00\x08", b"\xff\xc0\x00\x11\x08\x75\x30\x75\x30"), 413, "30000 x 30000"),
    "webp-then-zip": (WEBP + zip_bytes(), 422, "data after its end"),
    "gif-then-zip": (GIF + zip_bytes(), 422, "data after its end"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_image_is_refused_with_its_reason(name: str) -> None:
    data, status, words = BAD[name]
    expected = {413: TooLarge, 415: Unsupported, 422: Invalid}[status]
    with pytest.raises(DomainError) as refused:
        uploads.clean_image(data)
    assert type(refused.value) is expected and words in refused.value.message, refused.value.message


def test_the_30000_pixel_png_is_refused_from_its_header() -> None:
    """The header alone decides: the same 30,000 x 30,000 header with no pixel data at all."""
    header_only = png_sized(30_000, 30_000)[:33]
    with pytest.raises(TooLarge):
        uploads.clean_image(header_only)


def test_good_images_keep_their_pixels_and_lose_their_metadata() -> None:
    for data, original, ext in ((png_with_text(), PNG, "png"), (jpeg_with_exif(), JPEG, "jpg"),
                                (webp_with_exif(), WEBP, "webp"), (GIF[:-1] + b"!\xfe\x06secret\x00;", GIF, "gif")):
        clean = uploads.clean_image(data)
        assert clean.extension == ext and clean.data == original, ext  # exactly the file without its metadata
        assert SECRET not in clean.data and b"secret" not in clean.data
    assert (uploads.clean_image(PNG).width, uploads.clean_image(PNG).height) == (8, 6)
    assert uploads.clean_image(JPEG + b"trailing bytes after the image").data == JPEG


def test_a_clean_svg_is_rewritten_without_editor_metadata_and_comments() -> None:
    svg = (f'<?xml version="1.0"?><svg {SVG_NS} xmlns:xlink="http://www.w3.org/1999/xlink" '
           'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" viewBox="0 0 24 24" inkscape:version="1.3">'
           '<!-- made by someone --><metadata>author: someone</metadata><title>A ladder &amp; a wall</title>'
           '<defs><linearGradient id="g"><stop offset="0" stop-color="#123"/></linearGradient></defs>'
           '<style>.a { fill: url(#g) }</style><use xlink:href="#r"/><rect id="r" class="a" width="4" height="4"/>'
           '<image href="data:image/png;base64,' + base64.b64encode(PNG).decode() + '" width="8" height="6"/></svg>').encode()
    clean = uploads.clean_image(svg)
    assert clean.extension == "svg" and clean.media_type == "image/svg+xml"
    text = clean.data.decode()
    assert "inkscape" not in text and "someone" not in text and "<!--" not in text
    assert 'xlink:href="#r"' in text and "<title>A ladder &amp; a wall</title>" in text and "url(#g)" in text
    assert uploads.sanitise_svg(clean.data) == clean.data  # served as stored: sanitising again changes nothing
